// The connection behaviour of postgres-tls.md, proven against a real server: the sslmode matrix
// in all four server configurations, certificate failures, client certificates, the three
// configuration channels, and startup retries. This suite runs its own cluster (it restarts it),
// created with scripts/pg-cluster.sh, and drives the kachel binary.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tcp_proxy.hpp"
#include "support/tempdb.hpp"
#include "support/threads.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <thread>
#include <tuple>

using namespace std::chrono_literals;
using kachel::test::child_process;

namespace {

/// The suite's own throwaway cluster.
struct cluster {
    std::string dir;
    std::string port;
    std::string password;

    [[nodiscard]] std::string ssl(std::string const& file) const { return dir + "/ssl/" + file; }

    void run(std::string const& command, std::string const& env = {}) const {
        auto const cmd =
            env + " " + KACHEL_SCRIPTS_DIR "/pg-cluster.sh " + command + " '" + dir + "' >/dev/null";
        if (std::system(cmd.c_str()) != 0) {
            throw std::runtime_error{"pg-cluster.sh " + command + " failed"};
        }
    }
    /// Restarts with ssl on/off and hostssl-only or host pg_hba lines.
    void configure(bool ssl_on, bool hostssl_only) const {
        run("restart", std::string{"KACHEL_PG_SSL="} + (ssl_on ? "on" : "off") +
                           " KACHEL_PG_HBA=" + (hostssl_only ? "hostssl" : "host"));
    }
    [[nodiscard]] kachel::test::admin_connection admin(std::string const& db) const {
        return kachel::test::admin_connection{db, "postgres", dir + "/run", port};
    }
};

struct outcome {
    std::optional<int> code;
    std::string output;
};

std::map<std::string, std::optional<std::string>>
clean_env(std::map<std::string, std::optional<std::string>> extra) {
    std::map<std::string, std::optional<std::string>> env{
        {"DATABASE_URL", std::nullopt}, {"PGSSLROOTCERT", std::nullopt}, {"PGSSLCERT", std::nullopt},
        {"PGSSLKEY", std::nullopt},     {"PGSSLMODE", std::nullopt},     {"PGPASSWORD", std::nullopt},
        {"PGHOST", std::nullopt},       {"PGPORT", std::nullopt},        {"PGAPPNAME", std::nullopt},
        {"KACHEL_LOG", std::nullopt}};
    for (auto& [k, v] : extra) {
        env[k] = v;
    }
    return env;
}

outcome run_kachel(std::vector<std::string> args,
                   std::map<std::string, std::optional<std::string>> env = {}) {
    args.insert(args.begin(), KACHEL_BINARY);
    child_process proc{args, clean_env(std::move(env))};
    auto const code = proc.wait_exit(60s);
    return {code, proc.output()};
}

bool has(std::string const& text, std::string const& part) {
    return text.find(part) != std::string::npos;
}

class tls_matrix : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_cluster.dir =
            (std::filesystem::temp_directory_path() / ("kachel-tls-" + std::to_string(::getpid()))).string();
        s_cluster.run("start");
        s_cluster.port = read_file(s_cluster.dir + "/port");
        s_cluster.password = read_file(s_cluster.dir + "/password");
        auto admin = s_cluster.admin("postgres");
        admin.query("CREATE DATABASE kachel_matrix OWNER kachel");
        s_cluster.admin("kachel_matrix").query("CREATE EXTENSION postgis");
        kachel::test::admin_connection{"kachel_matrix", "kachel", s_cluster.dir + "/run", s_cluster.port}
            .query("CREATE TABLE pts (id int PRIMARY KEY, geom geometry(Point, 4326));"
                   "INSERT INTO pts VALUES (1, 'SRID=4326;POINT(1 2)')");
        make_client_certificates();
    }
    static void TearDownTestSuite() {
        try {
            s_cluster.run("stop");
        } catch (...) { // NOLINT(bugprone-empty-catch): best effort
        }
        std::error_code ignored;
        std::filesystem::remove_all(s_cluster.dir, ignored);
    }
    void SetUp() override { s_cluster.configure(true, true); }

    static std::string read_file(std::string const& path) {
        std::ifstream in{path};
        std::string s;
        std::getline(in, s);
        return s;
    }

    /// Extra client keys and certificates: other formats, another CA, short-lived, bad permissions.
    static void make_client_certificates() {
        auto const d = s_cluster.dir + "/ssl";
        std::string const sign = " | openssl x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 "
                                 "-extfile client.ext";
        std::string const script =
            "set -e; cd '" + d +
            "';"
            "openssl ecparam -name prime256v1 -genkey -noout -out client-ec.key 2>/dev/null;"
            "openssl req -new -key client-ec.key -subj /CN=kachel" +
            sign +
            " -days 365 -out client-ec.crt 2>/dev/null;"
            "openssl pkey -in client.key -traditional -out client-pkcs1.key;"
            "openssl pkey -in client.key -out client-pkcs8.key;"
            "openssl pkey -in client.key -aes256 -passout pass:key-passphrase -out client-enc.key;"
            "openssl req -new -key client.key -subj /CN=kachel | openssl x509 -req -CA other-ca.crt -CAkey "
            "other-ca.key "
            "-CAcreateserial -sha256 -extfile client.ext -days 365 -out client-other-ca.crt 2>/dev/null;"
            "openssl req -new -key client.key -subj /CN=kachel" +
            sign +
            " -days 10 -out client-short.crt 2>/dev/null;"
            "cp client.key client-0644.key; chmod 600 *.key; chmod 644 client-0644.key";
        if (std::system(
                ("bash -c \"" + std::regex_replace(script, std::regex{"\""}, "\\\"") + "\"").c_str()) != 0) {
            throw std::runtime_error{"making client certificates failed"};
        }
    }

    static std::string conninfo(std::string const& sslmode, std::string const& host = "localhost",
                                std::string const& db = "kachel_matrix") {
        return "host=" + host + " port=" + s_cluster.port + " dbname=" + db +
               " user=kachel password=" + s_cluster.password + " sslmode=" + sslmode;
    }
    static std::string url(std::string const& sslmode) {
        return "postgresql://kachel:" + s_cluster.password + "@localhost:" + s_cluster.port +
               "/kachel_matrix?sslmode=" + sslmode;
    }
    /// `--check-connection` with the CA from PGSSLROOTCERT; the password must never show.
    static outcome check(std::string const& conn,
                         std::map<std::string, std::optional<std::string>> env = {}) {
        if (!env.contains("PGSSLROOTCERT")) {
            env["PGSSLROOTCERT"] = s_cluster.ssl("ca.crt");
        }
        auto out = run_kachel({"--check-connection", conn}, std::move(env));
        EXPECT_FALSE(has(out.output, s_cluster.password)) << out.output;
        return out;
    }

    static cluster s_cluster;
};

cluster tls_matrix::s_cluster;

/// "OK TLS", "OK plain" or "FAIL <libpq's reason>".
std::string cell(outcome const& o) {
    if (o.code == 0) {
        return has(o.output, "  TLS: TLSv1") ? "OK TLS" : has(o.output, "  TLS: none") ? "OK plain" : "OK ?";
    }
    if (has(o.output, "no pg_hba.conf entry")) {
        return "FAIL no pg_hba entry";
    }
    if (has(o.output, "server does not support SSL, but SSL was required")) {
        return "FAIL server does not support SSL";
    }
    return "FAIL other: " + o.output;
}

} // namespace

TEST_F(tls_matrix, every_sslmode_in_every_server_configuration_behaves_as_libpq) {
    std::vector<std::string> const modes{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
    struct config {
        char const* name;
        bool ssl_on;
        bool hostssl_only;
        std::vector<std::string> expected;
    };
    std::string const hba = "FAIL no pg_hba entry";
    std::string const nossl = "FAIL server does not support SSL";
    std::vector<config> const configs{
        {"A ssl=on hostssl", true, true, {hba, "OK TLS", "OK TLS", "OK TLS", "OK TLS", "OK TLS"}},
        {"B ssl=on host", true, false, {"OK plain", "OK plain", "OK TLS", "OK TLS", "OK TLS", "OK TLS"}},
        {"C ssl=off host", false, false, {"OK plain", "OK plain", "OK plain", nossl, nossl, nossl}},
        {"D ssl=off hostssl", false, true, {hba, hba, hba, nossl, nossl, nossl}},
    };
    std::map<std::string, std::vector<std::string>> seen;
    for (auto const& c : configs) {
        s_cluster.configure(c.ssl_on, c.hostssl_only);
        for (std::size_t i = 0; i < modes.size(); ++i) {
            auto const got = cell(check(conninfo(modes[i])));
            seen[c.name].push_back(got);
            EXPECT_EQ(got, c.expected[i]) << c.name << ", sslmode=" << modes[i];
        }
    }
    std::cout << "\nsslmode matrix as kachel --check-connection reported it:\n";
    std::cout << fmt::format("| {:<11} | {:<20} | {:<20} | {:<32} | {:<32} |\n", "sslmode", configs[0].name,
                             configs[1].name, configs[2].name, configs[3].name);
    for (std::size_t i = 0; i < modes.size(); ++i) {
        std::cout << fmt::format("| {:<11} | {:<20} | {:<20} | {:<32} | {:<32} |\n", modes[i],
                                 seen[configs[0].name][i], seen[configs[1].name][i], seen[configs[2].name][i],
                                 seen[configs[3].name][i]);
    }
}

TEST_F(tls_matrix, wrong_ca_fails_verification_in_verify_modes_and_in_require_with_a_root_file) {
    for (char const* mode : {"verify-ca", "verify-full", "require"}) {
        auto const o = check(conninfo(mode), {{"PGSSLROOTCERT", s_cluster.ssl("other-ca.crt")}});
        EXPECT_EQ(o.code, 1) << mode;
        EXPECT_TRUE(has(o.output, "failed: SSL error: certificate verify failed")) << o.output;
        EXPECT_TRUE(has(o.output, "hint: certificate verification failed")) << o.output;
        EXPECT_TRUE(has(o.output, "\"" + s_cluster.ssl("other-ca.crt") + "\" (from PGSSLROOTCERT)"))
            << o.output;
    }
}

TEST_F(tls_matrix, verify_ca_accepts_a_hostname_mismatch_that_verify_full_refuses) {
    auto const full = check(conninfo("verify-full", "127.0.0.1"));
    EXPECT_EQ(full.code, 1);
    EXPECT_TRUE(has(full.output,
                    "server certificate for \"localhost\" (and 1 other name) does not match host name "
                    "\"127.0.0.1\""))
        << full.output;
    EXPECT_TRUE(has(full.output, "hint: hostname verification failed")) << full.output;
    auto const ca = check(conninfo("verify-ca", "127.0.0.1"));
    EXPECT_EQ(ca.code, 0) << ca.output;
    EXPECT_TRUE(has(ca.output, "verified: chain yes")) << ca.output;
    EXPECT_TRUE(has(ca.output, "hostname no")) << ca.output;
    auto const hostaddr = check(conninfo("verify-full") + " hostaddr=127.0.0.1");
    EXPECT_EQ(hostaddr.code, 0) << hostaddr.output;
}

TEST_F(tls_matrix, missing_root_file_names_the_file_and_its_channel) {
    auto const o = check(conninfo("verify-ca") + " sslrootcert=/nonexistent/ca.pem");
    EXPECT_EQ(o.code, 1);
    EXPECT_TRUE(has(o.output, "root certificate file \"/nonexistent/ca.pem\" does not exist")) << o.output;
    EXPECT_TRUE(has(o.output,
                    "Either provide the file or change sslmode to disable server certificate verification."))
        << o.output;
    EXPECT_TRUE(has(o.output, "(from sslrootcert in the connection string")) << o.output;
}

TEST_F(tls_matrix, require_without_a_root_file_does_not_verify) {
    auto const o = check(conninfo("require"), {{"PGSSLROOTCERT", "/nonexistent/ca.pem"}});
    EXPECT_EQ(o.code, 0) << o.output;
    EXPECT_TRUE(has(o.output, "verified: chain no, hostname no")) << o.output;
}

TEST_F(tls_matrix, client_certificate_authentication) {
    auto const cert_db = [](std::string const& user = "kachel") {
        return "host=localhost port=" + s_cluster.port + " dbname=kachel_cert user=" + user +
               " sslmode=verify-full";
    };
    auto const with = [](std::string const& crt, std::string const& key) {
        return std::map<std::string, std::optional<std::string>>{{"PGSSLCERT", s_cluster.ssl(crt)},
                                                                 {"PGSSLKEY", s_cluster.ssl(key)}};
    };
    auto const valid = check(cert_db(), with("client.crt", "client.key"));
    EXPECT_EQ(valid.code, 0) << valid.output;
    EXPECT_TRUE(has(valid.output, "client certificate: subject CN=kachel")) << valid.output;

    auto const none = check(cert_db(), {{"PGSSLCERT", "/nonexistent.crt"}, {"PGSSLKEY", "/nonexistent.key"}});
    EXPECT_EQ(none.code, 1);
    EXPECT_TRUE(has(none.output, "FATAL:  connection requires a valid client certificate")) << none.output;
    EXPECT_TRUE(has(none.output, "give postgres.ssl_cert and postgres.ssl_key")) << none.output;

    auto const other_ca = check(cert_db(), with("client-other-ca.crt", "client.key"));
    EXPECT_EQ(other_ca.code, 1);
    EXPECT_TRUE(has(other_ca.output, "SSL error: tlsv1 alert unknown ca")) << other_ca.output;
    EXPECT_TRUE(has(other_ca.output, "does not trust the issuer")) << other_ca.output;

    auto const wrong_user = check(cert_db("postgres"), with("client.crt", "client.key"));
    EXPECT_EQ(wrong_user.code, 1);
    EXPECT_TRUE(has(wrong_user.output, "FATAL:  certificate authentication failed for user \"postgres\""))
        << wrong_user.output;
    EXPECT_TRUE(has(wrong_user.output, "must equal the database user")) << wrong_user.output;

    auto const loose_key = check(cert_db(), with("client.crt", "client-0644.key"));
    EXPECT_EQ(loose_key.code, 1);
    EXPECT_TRUE(has(loose_key.output, "private key file \"" + s_cluster.ssl("client-0644.key") +
                                          "\" has group or world access"))
        << loose_key.output;
    EXPECT_TRUE(has(loose_key.output, "chmod 600")) << loose_key.output;
    EXPECT_TRUE(has(loose_key.output, "(from PGSSLKEY)")) << loose_key.output;

    auto const no_key =
        check(cert_db() + " sslcert=" + s_cluster.ssl("client.crt") + " sslkey=/nonexistent.key");
    EXPECT_EQ(no_key.code, 1);
    EXPECT_TRUE(has(no_key.output, "certificate present, but not private key file \"/nonexistent.key\""))
        << no_key.output;
    EXPECT_TRUE(has(no_key.output, "give the key with postgres.ssl_key")) << no_key.output;
}

TEST_F(tls_matrix, client_keys_in_every_format_libpq_accepts) {
    auto const base =
        "host=localhost port=" + s_cluster.port + " dbname=kachel_cert user=kachel sslmode=verify-full";
    for (auto const& [crt, key] :
         std::vector<std::pair<std::string, std::string>>{{"client.crt", "client-pkcs1.key"},
                                                          {"client.crt", "client-pkcs8.key"},
                                                          {"client-ec.crt", "client-ec.key"}}) {
        auto const o = check(base + " sslcert=" + s_cluster.ssl(crt) + " sslkey=" + s_cluster.ssl(key));
        EXPECT_EQ(o.code, 0) << key << "\n" << o.output;
    }
    auto const encrypted = check(base + " sslcert=" + s_cluster.ssl("client.crt") + " sslkey=" +
                                 s_cluster.ssl("client-enc.key") + " sslpassword=key-passphrase");
    EXPECT_EQ(encrypted.code, 0) << encrypted.output;
    EXPECT_FALSE(has(encrypted.output, "key-passphrase")) << encrypted.output;
}

TEST_F(tls_matrix, sslrootcert_system_uses_the_system_bundle_and_forces_verify_full) {
    // Our test CA is not a system CA, so verification against the system bundle must fail.
    auto const o =
        check("host=localhost port=" + s_cluster.port +
              " dbname=kachel_matrix user=kachel password=" + s_cluster.password + " sslrootcert=system");
    EXPECT_EQ(o.code, 1);
    EXPECT_TRUE(has(o.output, "sslmode: verify-full (from implied by sslrootcert=system)")) << o.output;
    EXPECT_TRUE(has(o.output, "certificate verify failed")) << o.output;
    auto const weak = check(conninfo("require") + " sslrootcert=system");
    EXPECT_EQ(weak.code, 1);
    EXPECT_TRUE(has(weak.output, "weak sslmode \"require\" may not be used with sslrootcert=system (use "
                                 "\"verify-full\")"))
        << weak.output;
}

TEST_F(tls_matrix, libpq_keywords_pass_through) {
    auto const named = check(conninfo("verify-full") + " application_name=my-app connect_timeout=5 "
                                                       "target_session_attrs=read-write");
    EXPECT_EQ(named.code, 0) << named.output;
    EXPECT_TRUE(has(named.output, "application_name: my-app")) << named.output;
    auto const own = check(conninfo("verify-full"));
    EXPECT_TRUE(has(own.output, "application_name: kachel")) << own.output;
}

TEST_F(tls_matrix, three_channels_one_result) {
    auto const config_path = s_cluster.dir + "/kachel.yaml";
    auto write_config = [&](std::string const& ca) {
        std::ofstream out{config_path};
        out << "postgres:\n  connection_string: ${MATRIX_URL}\n  ssl_root_cert: " << ca << "\n";
    };
    auto const ca = s_cluster.ssl("ca.crt");
    auto const bad = s_cluster.ssl("other-ca.crt");

    auto const cli = run_kachel({"--check-connection", url("verify-full"), "--ca-root-file", ca});
    auto const env =
        run_kachel({"--check-connection"}, {{"DATABASE_URL", url("verify-full")}, {"PGSSLROOTCERT", ca}});
    write_config(ca);
    auto const file =
        run_kachel({"--check-connection", "-c", config_path}, {{"MATRIX_URL", url("verify-full")}});
    for (auto const* o : {&cli, &env, &file}) {
        EXPECT_EQ(o->code, 0) << o->output;
        EXPECT_TRUE(has(o->output, "  TLS: TLSv1")) << o->output;
        EXPECT_TRUE(has(o->output, "verified: chain yes (against " + ca)) << o->output;
        EXPECT_TRUE(has(o->output, "hostname yes")) << o->output;
        EXPECT_FALSE(has(o->output, s_cluster.password)) << o->output;
    }

    auto const cli_bad = run_kachel({"--check-connection", url("verify-full"), "--ca-root-file", bad});
    auto const env_bad =
        run_kachel({"--check-connection"}, {{"DATABASE_URL", url("verify-full")}, {"PGSSLROOTCERT", bad}});
    write_config(bad);
    auto const file_bad =
        run_kachel({"--check-connection", "-c", config_path}, {{"MATRIX_URL", url("verify-full")}});
    std::vector<std::pair<outcome const*, std::string>> const failures{
        {&cli_bad, "(from --ca-root-file)"},
        {&env_bad, "(from PGSSLROOTCERT)"},
        {&file_bad, "(from postgres.ssl_root_cert in " + config_path + ")"}};
    for (auto const& [o, channel] : failures) {
        EXPECT_EQ(o->code, 1) << o->output;
        EXPECT_TRUE(has(o->output, "certificate verify failed")) << o->output;
        EXPECT_TRUE(has(o->output, "\"" + bad + "\" " + channel)) << o->output;
    }

    // --ca-root-file beats the config key; a keyword in the connection string beats both.
    auto const flag_wins = run_kachel({"--check-connection", "-c", config_path, "--ca-root-file", ca},
                                      {{"MATRIX_URL", url("verify-full")}});
    EXPECT_EQ(flag_wins.code, 0) << flag_wins.output;
    auto const string_wins =
        run_kachel({"--check-connection", url("verify-full") + "&sslrootcert=" + ca, "--ca-root-file", bad});
    EXPECT_EQ(string_wins.code, 0) << string_wins.output;
}

TEST_F(tls_matrix, startup_waits_for_a_database_that_is_not_there_yet) {
    s_cluster.run("stop");
    child_process kachel{{KACHEL_BINARY, "-l", "127.0.0.1:0", "--retry-timeout", "40", url("verify-full")},
                         clean_env({{"PGSSLROOTCERT", s_cluster.ssl("ca.crt")}, {"KACHEL_LOG", "debug"}})};
    EXPECT_TRUE(kachel.wait_for_output(
        "PostgreSQL is not reachable yet (Connection refused), retrying for up to 40 s", 20s))
        << kachel.output();
    std::this_thread::sleep_for(1500ms);
    s_cluster.run("start");
    ASSERT_TRUE(kachel.wait_for_output("kachel is now active", 30s)) << kachel.output();
    auto const out = kachel.output();
    EXPECT_TRUE(std::regex_search(out, std::regex{"connection attempt [0-9]+ .*sslmode verify-full.* failed: "
                                                  "connection to server at .*Connection refused"}))
        << out;
    EXPECT_TRUE(has(out, "Connected to PostgreSQL after")) << out;
    EXPECT_TRUE(has(out, "TLS TLSv1.3")) << out;
    EXPECT_TRUE(has(out, "server certificate subject CN=localhost")) << out;
    EXPECT_TRUE(has(out, "trusted CA (from PGSSLROOTCERT) subject CN=kachel test CA")) << out;
    EXPECT_FALSE(has(out, s_cluster.password)) << out;
}

TEST_F(tls_matrix, startup_gives_up_after_the_retry_timeout) {
    s_cluster.run("stop");
    auto const start = std::chrono::steady_clock::now();
    auto const o = run_kachel({"-l", "127.0.0.1:0", "--retry-timeout", "2", url("verify-full")},
                              {{"PGSSLROOTCERT", s_cluster.ssl("ca.crt")}});
    auto const took = std::chrono::steady_clock::now() - start;
    s_cluster.run("start");
    EXPECT_EQ(o.code, 1) << o.output;
    EXPECT_LT(took, 15s);
    EXPECT_TRUE(has(o.output, "Connection refused")) << o.output;
    EXPECT_TRUE(has(o.output, "gave up after")) << o.output;
}

TEST_F(tls_matrix, authentication_and_tls_failures_do_not_wait) {
    auto const start = std::chrono::steady_clock::now();
    auto const wrong_password =
        run_kachel({"-l", "127.0.0.1:0", "--retry-timeout", "60",
                    "postgresql://kachel:not-the-password@localhost:" + s_cluster.port +
                        "/kachel_matrix?sslmode=verify-full"},
                   {{"PGSSLROOTCERT", s_cluster.ssl("ca.crt")}});
    auto const wrong_ca = run_kachel({"-l", "127.0.0.1:0", "--retry-timeout", "60", url("verify-full")},
                                     {{"PGSSLROOTCERT", s_cluster.ssl("other-ca.crt")}});
    EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
    EXPECT_EQ(wrong_password.code, 1);
    EXPECT_TRUE(has(wrong_password.output, "FATAL:  password authentication failed for user \"kachel\""))
        << wrong_password.output;
    EXPECT_FALSE(has(wrong_password.output, "not-the-password")) << wrong_password.output;
    EXPECT_EQ(wrong_ca.code, 1);
    EXPECT_TRUE(has(wrong_ca.output, "certificate verify failed")) << wrong_ca.output;
}

TEST_F(tls_matrix, a_certificate_about_to_expire_is_warned_about) {
    auto const o = run_kachel(
        {"-l", "127.0.0.1:0",
         "host=localhost port=" + s_cluster.port + " dbname=kachel_cert user=kachel sslmode=verify-full"},
        {{"PGSSLROOTCERT", s_cluster.ssl("ca.crt")},
         {"PGSSLCERT", s_cluster.ssl("client-short.crt")},
         {"PGSSLKEY", s_cluster.ssl("client.key")}});
    EXPECT_TRUE(std::regex_search(
        o.output, std::regex{"warning .*the client certificate CN=kachel expires in [0-9]+ days"}))
        << o.output;
    auto const report =
        check("host=localhost port=" + s_cluster.port +
                  " dbname=kachel_cert user=kachel "
                  "sslmode=verify-full",
              {{"PGSSLCERT", s_cluster.ssl("client-short.crt")}, {"PGSSLKEY", s_cluster.ssl("client.key")}});
    EXPECT_TRUE(has(report.output, "warning: the client certificate CN=kachel expires in")) << report.output;
}

namespace {

/// A one-shot HTTP GET to 127.0.0.1:port with curl; returns "<status>\n<headers and body>".
std::string curl(unsigned short port, std::string const& target) {
    auto const out = std::filesystem::temp_directory_path() / ("kachel-curl-" + std::to_string(::getpid()));
    auto const cmd = "curl -s -m 20 -D - -o " + out.string() +
                     ".body http://127.0.0.1:" + std::to_string(port) + target + " > " + out.string() +
                     " 2>&1";
    std::ignore = std::system(cmd.c_str());
    std::ifstream head{out};
    std::ifstream body{out.string() + ".body"};
    std::string text{std::istreambuf_iterator<char>{head}, std::istreambuf_iterator<char>{}};
    text.append(std::istreambuf_iterator<char>{body}, std::istreambuf_iterator<char>{});
    std::error_code ignored;
    std::filesystem::remove(out, ignored);
    std::filesystem::remove(out.string() + ".body", ignored);
    return text;
}

} // namespace

TEST_F(tls_matrix, database_outage_gives_503_and_recovers) {
    child_process kachel{{KACHEL_BINARY, "-l", "127.0.0.1:0", "-p", "2", url("verify-full")},
                         clean_env({{"PGSSLROOTCERT", s_cluster.ssl("ca.crt")}})};
    auto const port = kachel::test::ready_port(kachel, 30s);
    ASSERT_NE(port, 0) << kachel.output();
    EXPECT_TRUE(has(curl(port, "/pts/0/0/0"), "HTTP/1.1 200"));
    EXPECT_TRUE(has(curl(port, "/_/ready"), "HTTP/1.1 200"));

    s_cluster.run("stop");
    auto const start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) { // the idle connection breaks first, then new ones are refused
        auto const tile = curl(port, "/pts/1/" + std::to_string(i % 2) + "/0");
        EXPECT_TRUE(has(tile, "HTTP/1.1 503")) << tile;
        EXPECT_TRUE(has(tile, "Retry-After: 5")) << tile;
        EXPECT_FALSE(has(tile, "Connection refused")) << tile; // details stay in the log
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
    auto const unready = curl(port, "/_/ready");
    EXPECT_TRUE(has(unready, "HTTP/1.1 503")) << unready;
    EXPECT_TRUE(has(unready, "is not answering")) << unready;
    EXPECT_TRUE(has(curl(port, "/health"), "HTTP/1.1 200")); // liveness is not readiness
    // A tile cached before the outage is still served.
    auto const cached = curl(port, "/pts/0/0/0");
    EXPECT_TRUE(has(cached, "HTTP/1.1 200")) << cached;

    s_cluster.run("start");
    EXPECT_TRUE(has(curl(port, "/pts/1/1/1"), "HTTP/1.1 200"));
    EXPECT_TRUE(has(curl(port, "/_/ready"), "HTTP/1.1 200"));
    EXPECT_TRUE(has(kachel.output(), "database unavailable")) << kachel.output();
}

namespace {

/// What load threads saw while the database went away and came back.
struct load_report {
    std::size_t ok = 0;
    std::size_t unavailable = 0; ///< 503 with Retry-After
    std::size_t other = 0;       ///< anything else (a crash or hang shows up here)
    std::chrono::milliseconds slowest_503{0};
    std::size_t timed_out = 0; ///< 504: the statement timeout cancelled the tile
    std::chrono::milliseconds slowest_504{0};
};

/// Requests tiles from `threads` threads until `stop`; sorts the answers.
/// (Run kachel with `-C 0`: cached tiles would not reach the database.)
class tile_load {
  public:
    tile_load(unsigned short port, int threads) {
        for (int i = 0; i < threads; ++i) {
            m_threads.push_back(kachel::test::test_thread([this, port, i] {
                while (!m_stop) {
                    auto const started = std::chrono::steady_clock::now();
                    unsigned status = 0;
                    bool retry_after = false;
                    try {
                        auto const r =
                            kachel::test::http_get(port, "/pts/" + std::to_string(2 + i % 3) + "/1/1");
                        status = r.status;
                        retry_after = !r.header("retry-after").empty();
                    } catch (std::exception const&) {
                        status = 0;
                    }
                    auto const took = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started);
                    std::lock_guard const lock{m_mutex};
                    if (status == 200 || status == 204) {
                        ++m_report.ok;
                        m_last_ok = std::chrono::steady_clock::now();
                    } else if (status == 503 && retry_after) {
                        ++m_report.unavailable;
                        m_report.slowest_503 = std::max(m_report.slowest_503, took);
                    } else if (status == 504) {
                        ++m_report.timed_out;
                        m_report.slowest_504 = std::max(m_report.slowest_504, took);
                    } else {
                        ++m_report.other;
                    }
                }
            }));
        }
    }
    ~tile_load() { finish(); }

    load_report finish() {
        m_stop = true;
        for (auto& t : m_threads) {
            if (t.joinable()) {
                t.join();
            }
        }
        std::lock_guard const lock{m_mutex};
        return m_report;
    }
    /// The first successful answer after `since`, if any.
    std::optional<std::chrono::steady_clock::time_point>
    ok_after(std::chrono::steady_clock::time_point since) {
        std::lock_guard const lock{m_mutex};
        if (m_report.ok > 0 && m_last_ok > since) {
            return m_last_ok;
        }
        return std::nullopt;
    }

  private:
    std::atomic<bool> m_stop{false};
    std::mutex m_mutex;
    load_report m_report;
    std::chrono::steady_clock::time_point m_last_ok{};
    std::vector<std::jthread> m_threads;
};

} // namespace

TEST_F(tls_matrix, database_restart_under_load_fast_and_immediate) {
    constexpr int pool_size = 3;
    child_process kachel{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "-p", std::to_string(pool_size), "-C", "0", url("verify-full")},
        clean_env({{"PGSSLROOTCERT", s_cluster.ssl("ca.crt")}})};
    auto const port = kachel::test::ready_port(kachel, 30s);
    ASSERT_NE(port, 0) << kachel.output();
    auto const kachel_backends = [] {
        return std::stoul(
            s_cluster.admin("postgres")
                .query("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'kachel%'")
                .at(0));
    };

    for (std::string const mode : {"fast", "immediate"}) {
        SCOPED_TRACE(mode);
        tile_load load{port, 6};
        std::size_t most_backends = 0;
        for (int i = 0; i < 20; ++i) { // one second of load before the outage
            most_backends = std::max(most_backends, kachel_backends());
            std::this_thread::sleep_for(50ms);
        }
        s_cluster.run("stop", "KACHEL_PG_STOP_MODE=" + mode);
        std::this_thread::sleep_for(3s);
        s_cluster.run("start");
        auto const up = std::chrono::steady_clock::now();
        std::optional<std::chrono::steady_clock::time_point> recovered;
        while (!recovered && std::chrono::steady_clock::now() - up < 10s) {
            std::this_thread::sleep_for(10ms);
            recovered = load.ok_after(up);
        }
        for (int i = 0; i < 20; ++i) { // one second of load after recovery
            most_backends = std::max(most_backends, kachel_backends());
            std::this_thread::sleep_for(50ms);
        }
        auto const report = load.finish();
        ASSERT_TRUE(recovered) << "no tile served within 10 s of the restart";
        auto const recovery = std::chrono::duration_cast<std::chrono::milliseconds>(*recovered - up);
        std::cout << "restart (" << mode << "): " << report.ok << " tiles, " << report.unavailable
                  << " x 503 (slowest " << report.slowest_503.count() << " ms), " << report.other
                  << " other; first tile " << recovery.count() << " ms after the database was up; at most "
                  << most_backends << " kachel backends\n";
        EXPECT_LT(recovery, 1s);
        EXPECT_GT(report.unavailable, 0U);
        EXPECT_EQ(report.other, 0U) << "answers other than 200/204/503+Retry-After";
        EXPECT_LE(report.slowest_503, 6s); // bounded by the 5 s acquire timeout
        EXPECT_LE(most_backends, static_cast<std::size_t>(pool_size));
    }
    EXPECT_TRUE(has(curl(port, "/health"), "HTTP/1.1 200")); // still alive
}

// A network path that goes silent (a TCP proxy that stops forwarding without closing anything,
// and keeps the connections of that time silent for ever): libpq alone would wait for ever.
// kachel answers every request within the statement timeout plus the acquire timeout, closes
// connections whose cancellation gets no answer, bounds its connection attempts, and serves
// tiles again soon after the path comes back, on new connections.
TEST_F(tls_matrix, a_silent_network_path_gets_bounded_answers_and_recovers) {
    constexpr int pool_size = 3;
    kachel::test::tcp_proxy proxy{static_cast<unsigned short>(std::stoi(s_cluster.port))};
    auto const config =
        std::filesystem::temp_directory_path() / ("kachel-blackhole-" + std::to_string(::getpid()) + ".yaml");
    std::ofstream{config} << "postgres:\n  connection_string: ${KACHEL_PROXY_URL}\n  pool_size: " << pool_size
                          << "\n  statement_timeout: 2s\n  acquire_timeout: 2s\n";
    child_process kachel{{KACHEL_BINARY, "-l", "127.0.0.1:0", "-C", "0", "-c", config.string()},
                         clean_env({{"PGSSLROOTCERT", s_cluster.ssl("ca.crt")},
                                    {"KACHEL_PROXY_URL", "postgresql://kachel:" + s_cluster.password +
                                                             "@localhost:" + std::to_string(proxy.port()) +
                                                             "/kachel_matrix?sslmode=verify-full"}})};
    auto const port = kachel::test::ready_port(kachel, 30s);
    std::filesystem::remove(config);
    ASSERT_NE(port, 0) << kachel.output();
    // kachel's live backends: the frozen ones are ghosts that only the server still sees (it
    // would drop them after its own TCP keepalive); kachel has closed its side of them.
    auto const live_backends = [&] {
        std::string ghosts = "0";
        for (auto const p : proxy.frozen_upstream_ports()) {
            ghosts += "," + std::to_string(p);
        }
        return std::stoul(s_cluster.admin("postgres")
                              .query("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                                     "'kachel%' AND client_port NOT IN (" +
                                     ghosts + ")")
                              .at(0));
    };
    auto const pool_connections = [&] {
        std::smatch g;
        auto const metrics = curl(port, "/_/metrics");
        return std::regex_search(metrics, g, std::regex{"kachel_postgres_pool_connections\\{[^}]*\\} (\\d+)"})
                   ? std::stoul(g[1])
                   : 999UL;
    };
    std::size_t most_backends = 0;
    std::size_t most_open = 0;
    auto const watch = [&](std::chrono::milliseconds how_long) {
        for (auto const end = std::chrono::steady_clock::now() + how_long;
             std::chrono::steady_clock::now() < end;) {
            most_backends = std::max(most_backends, live_backends());
            most_open = std::max(most_open, pool_connections());
            std::this_thread::sleep_for(50ms);
        }
    };

    tile_load load{port, 6};
    watch(1s);
    proxy.blackhole();
    watch(6s);
    auto const health = curl(port, "/health"); // the HTTP side never depends on the database
    proxy.heal();
    auto const healed = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> recovered;
    while (!recovered && std::chrono::steady_clock::now() - healed < 15s) {
        std::this_thread::sleep_for(10ms);
        recovered = load.ok_after(healed);
    }
    watch(1s);
    auto const report = load.finish();
    ASSERT_TRUE(recovered) << "no tile served within 15 s of the network path coming back\n"
                           << kachel.output();
    auto const recovery = std::chrono::duration_cast<std::chrono::milliseconds>(*recovered - healed);
    std::cout << "silent network path: " << report.ok << " tiles, " << report.unavailable
              << " x 503 (slowest " << report.slowest_503.count() << " ms), " << report.timed_out
              << " x 504 (slowest " << report.slowest_504.count() << " ms), " << report.other
              << " other; first tile " << recovery.count() << " ms after the path came back; at most "
              << most_open << " open pool connections and " << most_backends << " live kachel backends\n";
    EXPECT_TRUE(has(health, "HTTP/1.1 200")) << health;
    EXPECT_GT(report.unavailable + report.timed_out, 0U);
    EXPECT_EQ(report.other, 0U) << "answers other than 200/204/503+Retry-After/504";
    // statement_timeout (2 s) + acquire_timeout (2 s): nobody waits longer, whatever is stuck.
    EXPECT_LE(report.slowest_503, 4500ms);
    EXPECT_LE(report.slowest_504, 4500ms);
    // Pooled connections that went silent are only found out by their statement timeout (kachel
    // cannot tell a dead path from a slow query), so new ones take over after at most that.
    EXPECT_LT(recovery, 4500ms);
    EXPECT_LE(most_backends, static_cast<std::size_t>(pool_size));
    EXPECT_LE(most_open, static_cast<std::size_t>(pool_size));
    EXPECT_TRUE(has(kachel.output(), "timeout expired")) << "no connection attempt timed out";
}
