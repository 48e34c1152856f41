#include "postgres/publisher.hpp"

#include "core/error.hpp"
#include "postgres/discovery.hpp"
#include "postgres/table_source.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace kachel::postgres {

namespace asio = boost::asio;

namespace {

struct conninfo_options_deleter {
    void operator()(PQconninfoOption* o) const noexcept { PQconninfoFree(o); }
};

/// The value of `keyword` inside a connection string, if the string sets it.
std::optional<std::string> conninfo_value(std::string const& conninfo, std::string_view keyword) {
    char* err = nullptr;
    std::unique_ptr<PQconninfoOption, conninfo_options_deleter> opts{PQconninfoParse(conninfo.c_str(), &err)};
    if (err != nullptr) {
        PQfreemem(err);
    }
    if (!opts) {
        return std::nullopt;
    }
    for (auto* o = opts.get(); o->keyword != nullptr; ++o) {
        if (o->val != nullptr && keyword == o->keyword) {
            return std::string{o->val};
        }
    }
    return std::nullopt;
}

/// Which root certificate file libpq used, and through which channel it was named.
std::string describe_root_cert(pg::connect_params const& params) {
    if (auto v = conninfo_value(params.conninfo, "sslrootcert")) {
        return fmt::format("\"{}\" (sslrootcert in the connection string)", *v);
    }
    if (params.ca_root_file) {
        return fmt::format("\"{}\" (--ca-root-file)", *params.ca_root_file);
    }
    if (char const* env = std::getenv("PGSSLROOTCERT")) {
        return fmt::format("\"{}\" (PGSSLROOTCERT)", env);
    }
    return "~/.postgresql/root.crt (libpq's default; set PGSSLROOTCERT or --ca-root-file)";
}

/// Connection identity used in source signatures: host, port and database (decision D11).
std::string pool_identity(pg::connection const& conn) {
    char const* db = PQdb(conn.native_handle());
    return fmt::format("{}/{}", conn.server_address(), db == nullptr ? "" : db);
}

void log_connection(pg::connection const& conn, server_versions const& versions) {
    PGconn* c = conn.native_handle();
    char const* sslmode = nullptr;
    std::unique_ptr<PQconninfoOption, conninfo_options_deleter> opts{PQconninfo(c)};
    for (auto* o = opts.get(); o != nullptr && o->keyword != nullptr; ++o) {
        if (std::string_view{o->keyword} == "sslmode") {
            sslmode = o->val;
        }
    }
    std::string tls = "no TLS";
    if (PQsslInUse(c) != 0) {
        char const* protocol = PQsslAttribute(c, "protocol");
        char const* cipher = PQsslAttribute(c, "cipher");
        tls =
            fmt::format("TLS {} {}", protocol == nullptr ? "?" : protocol, cipher == nullptr ? "?" : cipher);
    }
    spdlog::info("Connected to PostgreSQL {} / PostGIS {} at {} as {} (database {}, sslmode {}, {})",
                 versions.postgres_text, versions.postgis_text, conn.server_address(), PQuser(c), PQdb(c),
                 sslmode == nullptr ? "prefer" : sslmode, tls);
}

char const* relation_kind(char relkind) noexcept {
    switch (relkind) {
    case 'v':
        return "view";
    case 'm':
        return "materialized view";
    default:
        return "table";
    }
}

} // namespace

std::string connection_hint(std::string_view msg, pg::connect_params const& params) {
    if (msg.find("certificate verify failed") != std::string_view::npos) {
        return fmt::format(
            "hint: certificate verification failed: check that the server certificate is signed by "
            "the CA in {}, and that this file is the right one and readable",
            describe_root_cert(params));
    }
    if (msg.find("does not match host name") != std::string_view::npos) {
        return "hint: hostname verification failed: connect using a name the certificate lists, or re-issue "
               "the "
               "certificate with a subjectAltName for this host (sslmode=verify-ca skips this check)";
    }
    if (msg.find("root certificate file") != std::string_view::npos) {
        return fmt::format("hint: the root certificate file {} is missing: provide it, or point "
                           "--ca-root-file / PGSSLROOTCERT / sslrootcert at your CA file",
                           describe_root_cert(params));
    }
    if (msg.find("server does not support SSL") != std::string_view::npos) {
        return "hint: the server has ssl=off, or a pooler in between does not speak TLS";
    }
    if (msg.find("Connection refused") != std::string_view::npos) {
        return "hint: connection refused: is PostgreSQL running, listening on that address "
               "(listen_addresses) "
               "and port, and does pg_hba.conf admit this host (hostssl for TLS)?";
    }
    if (msg.find("no pg_hba.conf entry") != std::string_view::npos) {
        return "hint: pg_hba.conf has no line for this host, user and database with this encryption "
               "(a server that only has hostssl lines refuses sslmode=disable)";
    }
    if (msg.find("password authentication failed") != std::string_view::npos) {
        return "hint: authentication failed: check the user name and password (not shown)";
    }
    return {};
}

asio::awaitable<std::size_t> async_publish_database(asio::any_io_executor executor, pg::connect_params params,
                                                    pg::pool_options options, tiles::id_resolver& ids,
                                                    tiles::catalog& catalog) {
    auto const redacted = pg::redacted_conninfo(params.conninfo);
    spdlog::info("Connecting to PostgreSQL ({})", redacted.empty() ? "libpq defaults" : redacted);
    std::unique_ptr<pg::connection> conn;
    std::string failure;
    try {
        pg::connect_params first = params;
        first.application_name = options.name + "/C1";
        conn = co_await pg::connection::async_connect(executor, first);
    } catch (database_error const& e) {
        failure = e.what();
    }
    if (!conn) {
        auto const hint = connection_hint(failure, params);
        throw database_error{fmt_error("Connecting to PostgreSQL ({}) failed: {}{}{}", redacted, failure,
                                       hint.empty() ? "" : "\n", hint)};
    }
    auto const versions = co_await async_check_versions(*conn);
    log_connection(*conn, versions);
    auto const identity = pool_identity(*conn);
    auto pool = pg::pool::create(executor, std::move(params), std::move(options));

    auto tables = co_await async_discover_tables(*conn);
    co_await conn->async_exec("SET statement_timeout = 5000");
    std::size_t added = 0;
    for (auto& table : tables) {
        auto const qualified = fmt::format("{}.{}.{}", table.schema, table.table, table.geometry_column);
        if (table.srid == 0) {
            spdlog::warn("Table {} has SRID=0, skipping it (give the column an SRID)", qualified);
            continue;
        }
        if (!table.has_spatial_index && table.relkind != 'v') {
            spdlog::warn("Table {}.{} has no spatial index on column {}", table.schema, table.table,
                         table.geometry_column);
        }
        auto id = ids.resolve(table.table, identity + "." + qualified);
        auto bounds = co_await async_table_bounds(*conn, table);
        spdlog::info("Publishing {} {} as source '{}'", relation_kind(table.relkind), qualified, id);
        catalog.add(std::make_shared<table_source>(std::move(id), std::move(table), bounds, pool,
                                                   versions.postgis >= postgis_margin_version));
        ++added;
    }
    co_await conn->async_exec("RESET statement_timeout");
    pool->adopt(std::move(conn));
    co_return added;
}

} // namespace kachel::postgres
