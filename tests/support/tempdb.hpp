#pragma once

#include "pg/connection.hpp"
#include "pg/result.hpp"
#include "test_env.hpp"

#include <libpq-fe.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kachel::test {

/// Synchronous libpq helper for test setup and checks (the code under test is asynchronous).
class admin_connection {
  public:
    /// Connects over the cluster's unix socket (trusted) as `user` to `dbname`; socket and port
    /// default to the suite's cluster (KACHEL_PG_SOCKET, KACHEL_PG_PORT).
    admin_connection(std::string const& dbname, std::string const& user = "postgres", std::string socket = {},
                     std::string port = {})
        : m_conn(PQconnectdb(("host=" + (socket.empty() ? cluster_env("KACHEL_PG_SOCKET") : socket) +
                              " port=" + (port.empty() ? cluster_env("KACHEL_PG_PORT") : port) +
                              " user=" + user + " dbname='" + dbname + "'")
                                 .c_str())) {
        if (PQstatus(m_conn.get()) != CONNECTION_OK) {
            throw std::runtime_error{std::string{"admin connection failed: "} + PQerrorMessage(m_conn.get())};
        }
    }

    /// Runs SQL; returns the first column of every row. \throws std::runtime_error on failure.
    std::vector<std::string> query(std::string const& sql) {
        pg::result const r{PQexec(m_conn.get(), sql.c_str())};
        if (r.status() != PGRES_TUPLES_OK && r.status() != PGRES_COMMAND_OK) {
            throw std::runtime_error{"query failed: " + sql + ": " + std::string{r.error_message()}};
        }
        std::vector<std::string> out;
        for (int i = 0; i < r.num_rows(); ++i) {
            out.emplace_back(r.get(i, 0));
        }
        return out;
    }

  private:
    c_handle<PGconn, PQfinish> m_conn;
};

/// A throwaway database `kachel-test-<pid>-<n>` owned by role kachel, with PostGIS and the
/// fixture SQL loaded (tests/fixtures/sql/*.sql in name order, as role kachel). Dropped when
/// destroyed unless KACHEL_KEEP_TEST_DB is set.
class tempdb {
  public:
    tempdb() : m_name(make_name()) {
        admin_connection admin{"postgres"};
        admin.query("CREATE DATABASE \"" + m_name + "\" OWNER kachel");
        admin_connection{m_name}.query("CREATE EXTENSION postgis");
        std::vector<std::filesystem::path> files;
        for (auto const& entry : std::filesystem::directory_iterator{KACHEL_FIXTURES_DIR "/sql"}) {
            if (entry.path().extension() == ".sql") {
                files.push_back(entry.path());
            }
        }
        std::sort(files.begin(), files.end());
        for (auto const& file : files) {
            std::string const cmd = "psql -X -q -v ON_ERROR_STOP=1 -h '" + cluster_env("KACHEL_PG_SOCKET") +
                                    "' -p " + cluster_env("KACHEL_PG_PORT") + " -U kachel -d '" + m_name +
                                    "' -f '" + file.string() + "' >/dev/null";
            if (std::system(cmd.c_str()) != 0) {
                throw std::runtime_error{"loading fixture " + file.string() + " failed"};
            }
        }
    }
    tempdb(tempdb const&) = delete;
    tempdb& operator=(tempdb const&) = delete;
    ~tempdb() {
        if (std::getenv("KACHEL_KEEP_TEST_DB") != nullptr) {
            return;
        }
        try {
            admin_connection{"postgres"}.query("DROP DATABASE IF EXISTS \"" + m_name + "\" WITH (FORCE)");
        } catch (...) { // NOLINT(bugprone-empty-catch): best effort in a destructor
        }
    }

    [[nodiscard]] std::string const& name() const noexcept { return m_name; }

    /// Runs SQL in this database as role kachel.
    std::vector<std::string> query(std::string const& sql) const {
        return admin_connection{m_name, "kachel"}.query(sql);
    }

  private:
    static std::string make_name() {
        static std::atomic<int> counter{0};
        return "kachel-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    }

    std::string m_name;
};

} // namespace kachel::test
