#include "core/error.hpp"
#include "pg/connect_params.hpp"
#include "pg/diagnosis.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace kachel;
using pg::make_connect_params;
using pg::sourced_value;
using pg::tls_overrides;

namespace {

/// Sets environment variables for one test and restores them afterwards.
class scoped_env {
  public:
    scoped_env(std::initializer_list<std::pair<char const*, char const*>> vars) {
        for (auto const& [k, v] : vars) {
            char const* old = std::getenv(k);
            m_saved.emplace_back(k, old == nullptr ? std::optional<std::string>{} : std::string{old});
            if (v == nullptr) {
                ::unsetenv(k);
            } else {
                ::setenv(k, v, 1);
            }
        }
    }
    ~scoped_env() {
        for (auto const& [k, v] : m_saved) {
            if (v) {
                ::setenv(k.c_str(), v->c_str(), 1);
            } else {
                ::unsetenv(k.c_str());
            }
        }
    }

  private:
    std::vector<std::pair<std::string, std::optional<std::string>>> m_saved;
};

scoped_env clean_env() {
    return scoped_env{
        {"PGSSLROOTCERT", nullptr}, {"PGSSLCERT", nullptr}, {"PGSSLKEY", nullptr}, {"PGSSLMODE", nullptr}};
}

} // namespace

TEST(connect_params, url_and_key_value_forms_give_the_same_keywords) {
    auto const env = clean_env();
    auto const url =
        make_connect_params("postgresql://bob:pw@db.example:5433/tiles?sslmode=verify-full", {}, "t");
    auto const kv = make_connect_params("host=db.example port=5433 user=bob password=pw dbname=tiles "
                                        "sslmode=verify-full",
                                        {}, "t");
    for (char const* k : {"host", "port", "user", "password", "dbname", "sslmode"}) {
        EXPECT_EQ(url.keyword(k), kv.keyword(k)) << k;
    }
    EXPECT_EQ(url.sslmode.value, "verify-full");
}

TEST(connect_params, redaction_drops_passwords_in_both_forms) {
    auto const env = clean_env();
    auto const url =
        make_connect_params("postgresql://bob:hunter2@db.example:5433/tiles?sslmode=verify-full", {}, "t");
    EXPECT_EQ(url.redacted().find("hunter2"), std::string::npos) << url.redacted();
    EXPECT_NE(url.redacted().find("user=bob"), std::string::npos) << url.redacted();
    auto const kv =
        make_connect_params("host=h user=bob password='hunter2' sslpassword=k3y dbname=t", {}, "t");
    EXPECT_EQ(kv.redacted().find("hunter2"), std::string::npos) << kv.redacted();
    EXPECT_EQ(kv.redacted().find("k3y"), std::string::npos) << kv.redacted();
}

TEST(connect_params, parse_errors_never_show_the_password) {
    for (char const* bad : {"host=h password='hunter2", "postgresql://bob:hunter2@h/db?unknownparam=1",
                            "host=h password=hunter2 bogus_keyword=1"}) {
        try {
            (void)make_connect_params(bad, {}, "command line argument 1");
            ADD_FAILURE() << "parsed: " << bad;
        } catch (config_error const& e) {
            EXPECT_EQ(std::string{e.what()}.find("hunter2"), std::string::npos) << e.what();
            EXPECT_NE(std::string{e.what()}.find("command line argument 1"), std::string::npos) << e.what();
        }
    }
}

TEST(connect_params, root_cert_precedence_string_then_flag_then_config_then_env) {
    auto const env = scoped_env{{"PGSSLROOTCERT", "/env.pem"}, {"PGSSLMODE", nullptr}};
    tls_overrides flag;
    flag.root_cert = sourced_value{"/flag.pem", "--ca-root-file"};

    auto const in_string = make_connect_params("host=h sslrootcert=/string.pem", flag, "t");
    EXPECT_EQ(in_string.root_cert.value, "/string.pem");
    EXPECT_EQ(in_string.keyword("sslrootcert"), "/string.pem");

    auto const from_flag = make_connect_params("host=h", flag, "t");
    EXPECT_EQ(from_flag.root_cert.value, "/flag.pem");
    EXPECT_EQ(from_flag.root_cert.source, "--ca-root-file");
    EXPECT_EQ(from_flag.keyword("sslrootcert"), "/flag.pem");

    auto const from_env = make_connect_params("host=h", {}, "t");
    EXPECT_EQ(from_env.root_cert.value, "/env.pem");
    EXPECT_EQ(from_env.root_cert.source, "PGSSLROOTCERT");
    EXPECT_FALSE(from_env.keyword("sslrootcert")); // libpq reads the variable itself
}

TEST(connect_params, default_paths_when_nothing_is_given) {
    auto const env = clean_env();
    auto const p = make_connect_params("host=h", {}, "t");
    EXPECT_NE(p.root_cert.value.find(".postgresql/root.crt"), std::string::npos);
    EXPECT_EQ(p.root_cert.source, "libpq's default path");
    EXPECT_EQ(p.sslmode.value, "prefer");
}

TEST(connect_params, client_cert_and_key_from_config_unless_in_the_string) {
    auto const env = clean_env();
    tls_overrides config;
    config.cert = sourced_value{"/c.crt", "postgres.ssl_cert in k.yaml"};
    config.key = sourced_value{"/c.key", "postgres.ssl_key in k.yaml"};
    auto const p = make_connect_params("host=h sslkey=/own.key", config, "t");
    EXPECT_EQ(p.keyword("sslcert"), "/c.crt");
    EXPECT_EQ(p.keyword("sslkey"), "/own.key");
    EXPECT_EQ(p.cert.source, "postgres.ssl_cert in k.yaml");
}

TEST(connect_params, sslrootcert_system_means_the_bundle_and_verify_full) {
    auto const env = clean_env();
    auto const p = make_connect_params("host=h sslrootcert=system", {}, "t");
    EXPECT_EQ(p.keyword("sslrootcert"), pg::system_ca_bundle());
    EXPECT_EQ(p.keyword("sslmode"), "verify-full");
    EXPECT_EQ(p.sslmode.value, "verify-full");
    EXPECT_NO_THROW((void)make_connect_params("host=h sslrootcert=system sslmode=verify-full", {}, "t"));
}

TEST(connect_params, sslrootcert_system_refuses_weaker_modes_with_libpq16_text) {
    auto const env = clean_env();
    for (char const* mode : {"disable", "allow", "prefer", "require", "verify-ca"}) {
        try {
            (void)make_connect_params(std::string{"host=h sslrootcert=system sslmode="} + mode, {}, "t");
            ADD_FAILURE() << mode;
        } catch (config_error const& e) {
            EXPECT_NE(std::string{e.what()}.find(
                          std::string{"weak sslmode \""} + mode +
                          "\" may not be used with sslrootcert=system (use \"verify-full\")"),
                      std::string::npos)
                << e.what();
        }
    }
    auto const from_env = scoped_env{{"PGSSLMODE", "require"}};
    EXPECT_THROW((void)make_connect_params("host=h sslrootcert=system", {}, "t"), config_error);
}

TEST(diagnosis, transient_failures_are_retried_others_not) {
    EXPECT_TRUE(pg::is_transient_failure("connection to server at \"localhost\" (127.0.0.1), port 1 failed: "
                                         "Connection refused\n\tIs the server running on that host?"));
    EXPECT_TRUE(pg::is_transient_failure("...failed: FATAL:  the database system is starting up"));
    EXPECT_TRUE(pg::is_transient_failure("...failed: timeout expired"));
    EXPECT_FALSE(pg::is_transient_failure("...failed: SSL error: certificate verify failed"));
    EXPECT_FALSE(
        pg::is_transient_failure("...failed: FATAL:  password authentication failed for user \"x\""));
    EXPECT_FALSE(pg::is_transient_failure("...failed: server does not support SSL, but SSL was required"));
}

TEST(diagnosis, hints_name_the_file_and_its_channel) {
    auto const env = clean_env();
    tls_overrides flag;
    flag.root_cert = sourced_value{"/etc/ca.pem", "--ca-root-file"};
    auto const p = make_connect_params("host=h sslmode=verify-full sslcert=/c.crt sslkey=/c.key", flag, "t");
    auto const verify = pg::connection_hint("SSL error: certificate verify failed", p);
    EXPECT_NE(verify.find("\"/etc/ca.pem\" (from --ca-root-file)"), std::string::npos) << verify;
    auto const name = pg::connection_hint(
        "server certificate for \"localhost\" (and 1 other name) does not match host name \"127.0.0.1\"", p);
    EXPECT_NE(name.find("\"localhost\" (and 1 other name)"), std::string::npos) << name;
    EXPECT_NE(name.find("verify-ca"), std::string::npos) << name;
    auto const perms = pg::connection_hint("private key file \"/c.key\" has group or world access; ...", p);
    EXPECT_NE(perms.find("chmod 600"), std::string::npos) << perms;
    EXPECT_NE(perms.find("sslkey in the connection string"), std::string::npos) << perms;
    EXPECT_NE(
        pg::connection_hint("certificate present, but not private key file \"/c.key\"", p).find("ssl_key"),
        std::string::npos);
    EXPECT_NE(
        pg::connection_hint("FATAL:  connection requires a valid client certificate", p).find("ssl_cert"),
        std::string::npos);
    EXPECT_NE(pg::connection_hint("SSL error: tlsv1 alert unknown ca", p).find("issuer"), std::string::npos);
    EXPECT_NE(pg::connection_hint("FATAL:  certificate authentication failed for user \"x\"", p).find("(CN)"),
              std::string::npos);
    EXPECT_NE(pg::connection_hint("server does not support SSL, but SSL was required", p).find("ssl=off"),
              std::string::npos);
    EXPECT_NE(pg::connection_hint("FATAL:  no pg_hba.conf entry for host", p).find("pg_hba.conf"),
              std::string::npos);
    EXPECT_NE(
        pg::connection_hint("FATAL:  password authentication failed for user \"x\"", p).find("not shown"),
        std::string::npos);
    EXPECT_TRUE(pg::connection_hint("something else entirely", p).empty());
}
