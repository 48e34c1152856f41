#include "config/config_file.hpp"
#include "config/env_substitution.hpp"
#include "core/error.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace kachel;
using config::parse_config;
using config::substitute_env;

namespace {

config::env_lookup env(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](std::string const& name) -> std::optional<std::string> {
        auto const it = vars.find(name);
        return it == vars.end() ? std::nullopt : std::optional<std::string>{it->second};
    };
}

} // namespace

TEST(env_substitution, all_forms) {
    auto const e = env({{"SET", "v"}, {"EMPTY", ""}});
    EXPECT_EQ(substitute_env("a${SET}b", e), "avb");
    EXPECT_EQ(substitute_env("$SET/x", e), "v/x");
    EXPECT_EQ(substitute_env("${UNSET:-d}", e), "d");
    EXPECT_EQ(substitute_env("${EMPTY:-d}", e), "d");
    EXPECT_EQ(substitute_env("${EMPTY-d}", e), "");
    EXPECT_EQ(substitute_env("${UNSET-d}", e), "d");
    EXPECT_EQ(substitute_env("${SET:+alt}", e), "alt");
    EXPECT_EQ(substitute_env("${EMPTY:+alt}", e), "");
    EXPECT_EQ(substitute_env("${EMPTY+alt}", e), "alt");
    EXPECT_EQ(substitute_env("$$SET", e), "$SET");
    EXPECT_EQ(substitute_env("${UNSET:postgres://h:5432/db}", e), "postgres://h:5432/db"); // legacy form
    EXPECT_EQ(substitute_env("${UNSET:-${SET}}", e), "v");
    EXPECT_EQ(substitute_env("price $ 5", e), "price $ 5");
}

TEST(env_substitution, missing_variable_is_an_error) {
    auto const e = env({});
    try {
        (void)substitute_env("${DB_URL}", e);
        FAIL();
    } catch (config_error const& err) {
        EXPECT_NE(std::string{err.what()}.find("missing property 'DB_URL'"), std::string::npos) << err.what();
    }
    EXPECT_THROW((void)substitute_env("${X:?set X please}", e), config_error);
    EXPECT_THROW((void)substitute_env("${UNCLOSED", e), config_error);
}

TEST(config_file, single_postgres_entry_with_substitution_in_plain_scalars_only) {
    auto const file = parse_config("postgres:\n"
                                   "  connection_string: ${DB_URL}\n"
                                   "  ssl_root_cert: '${NOT_EXPANDED}'\n"
                                   "  ssl_cert: ${CERT:-/default.crt}\n"
                                   "  pool_size: 4\n"
                                   "  retry_timeout: 2m\n",
                                   "k.yaml", env({{"DB_URL", "postgresql://u@h/db"}}));
    ASSERT_EQ(file.postgres.size(), 1U);
    auto const& p = file.postgres[0];
    EXPECT_EQ(p.connection_string, "postgresql://u@h/db");
    EXPECT_EQ(p.ssl_root_cert->value, "${NOT_EXPANDED}");
    EXPECT_EQ(p.ssl_cert->value, "/default.crt");
    EXPECT_EQ(p.ssl_cert->source, "postgres.ssl_cert in k.yaml");
    EXPECT_EQ(p.pool_size, 4U);
    EXPECT_EQ(p.retry_timeout, std::chrono::seconds{120});
    EXPECT_EQ(p.origin, "k.yaml postgres");
}

TEST(config_file, list_of_connections) {
    auto const file = parse_config("postgres:\n"
                                   "  - connection_string: host=a dbname=x\n"
                                   "  - connection_string: host=b dbname=x\n",
                                   "k.yaml", env({}));
    ASSERT_EQ(file.postgres.size(), 2U);
    EXPECT_EQ(file.postgres[1].origin, "k.yaml postgres[1]");
}

TEST(config_file, errors_name_the_key_and_value) {
    auto expect_error = [](std::string const& yaml, std::string const& needle) {
        try {
            (void)parse_config(yaml, "k.yaml", env({}));
            ADD_FAILURE() << "accepted: " << yaml;
        } catch (config_error const& e) {
            EXPECT_NE(std::string{e.what()}.find(needle), std::string::npos) << e.what();
        }
    };
    expect_error("postgres:\n  connection_string: host=h\n  pool_size: 0\n",
                 "'postgres.pool_size' must be a positive");
    expect_error("postgres:\n  connection_string: host=h\n  pool_size: many\n", "got 'many'");
    expect_error("postgres:\n  pool_size: 3\n", "'postgres.connection_string' is required");
    expect_error("postgres: [1, 2\n", "not valid YAML");
    expect_error("postgres:\n  connection_string: ${NOPE}\n", "missing property 'NOPE'");
    expect_error("worker_processes: -1\n", "'worker_processes' must be a positive integer");
}

TEST(config_file, unknown_and_unsupported_keys_are_not_fatal) {
    auto const file = parse_config("listen_addresses: 1.2.3.4:5\nfoo: 1\ncache_size_mb: 3\n"
                                   "postgres:\n  connection_string: host=h\n  bar: 2\n  auto_publish: true\n",
                                   "k.yaml", env({}));
    EXPECT_EQ(file.listen_addresses, "1.2.3.4:5");
    EXPECT_EQ(file.postgres.size(), 1U);
}
