#include "config/settings.hpp"
#include "config/value_text.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

using namespace kachel;

namespace {

config::command_line parse(std::vector<char const*> args) {
    args.insert(args.begin(), "kachel");
    return config::parse_command_line(static_cast<int>(args.size()), args.data());
}

std::vector<std::string> connection_strings(config::settings const& s) {
    std::vector<std::string> out;
    for (auto const& p : s.postgres) {
        out.push_back(p.connection_string);
    }
    return out;
}

} // namespace

TEST(command_line, defaults_match_martin) {
    ::unsetenv("DATABASE_URL");
    auto const cli = parse({});
    EXPECT_FALSE(cli.exit_code);
    EXPECT_EQ(cli.values.listen_addresses, "0.0.0.0:3000");
    EXPECT_FALSE(cli.values.pool_size);
    EXPECT_TRUE(cli.values.postgres.empty());
    EXPECT_FALSE(cli.values.check_connection);
}

TEST(command_line, flags_and_positional_connections) {
    auto const cli =
        parse({"-l", "127.0.0.1:0", "-p", "3", "-W", "2", "--ca-root-file", "/ca.pem", "--retry-timeout", "7",
               "--check-connection", "postgresql://u@h/db", "host=h dbname=d"});
    auto const& s = cli.values;
    EXPECT_EQ(s.listen_addresses, "127.0.0.1:0");
    EXPECT_EQ(s.workers, 2U);
    EXPECT_EQ(s.ca_root_file, "/ca.pem");
    EXPECT_TRUE(s.check_connection);
    EXPECT_EQ(connection_strings(s), (std::vector<std::string>{"postgresql://u@h/db", "host=h dbname=d"}));
    EXPECT_EQ(s.pool_size_for(1), 3U);
    EXPECT_EQ(s.retry_timeout_for(0), std::chrono::seconds{7});
    EXPECT_EQ(s.postgres[1].origin, "command line argument 2");
}

TEST(command_line, database_url_only_without_positional) {
    ::setenv("DATABASE_URL", "postgres://env@h/db", 1);
    EXPECT_EQ(connection_strings(parse({}).values), std::vector<std::string>{"postgres://env@h/db"});
    EXPECT_EQ(parse({}).values.postgres[0].origin, "DATABASE_URL");
    EXPECT_EQ(connection_strings(parse({"postgresql://arg@h/db"}).values),
              std::vector<std::string>{"postgresql://arg@h/db"});
    ::unsetenv("DATABASE_URL");
}

TEST(command_line, unrecognised_argument_is_an_error_without_the_password) {
    try {
        (void)parse({"mysql://user:secret@h/db"});
        FAIL() << "expected config_error";
    } catch (config_error const& e) {
        std::string const msg = e.what();
        EXPECT_NE(msg.find("Unrecognizable connection strings"), std::string::npos);
        EXPECT_EQ(msg.find("secret"), std::string::npos) << msg;
    }
}

TEST(command_line, pool_size_zero_is_rejected) {
    EXPECT_THROW((void)parse({"-p", "0"}), config_error);
}

TEST(command_line, version_prints_the_version_and_exits_zero) {
    for (char const* flag : {"--version", "-V"}) {
        ::testing::internal::CaptureStdout();
        EXPECT_EQ(parse({flag}).exit_code, 0);
        EXPECT_EQ(::testing::internal::GetCapturedStdout(), "kachel " KACHEL_VERSION "\n") << flag;
    }
}

TEST(command_line, config_file_with_flags_on_top) {
    auto const path = std::string{::testing::TempDir()} + "kachel-test-config.yaml";
    {
        std::ofstream out{path};
        out << "listen_addresses: 127.0.0.1:4000\nworker_processes: 3\n"
               "postgres:\n  - connection_string: postgresql://a@h/one\n    pool_size: 5\n"
               "    ssl_root_cert: /etc/ca-one.pem\n"
               "  - connection_string: postgresql://b@h/two\n";
    }
    auto const plain = parse({"-c", path.c_str()}).values;
    EXPECT_EQ(plain.listen_addresses, "127.0.0.1:4000");
    EXPECT_EQ(plain.workers, 3U);
    ASSERT_EQ(plain.postgres.size(), 2U);
    EXPECT_EQ(plain.pool_size_for(0), 5U);
    EXPECT_EQ(plain.pool_size_for(1), 20U);
    EXPECT_EQ(plain.connect_params_for(0).root_cert.value, "/etc/ca-one.pem");
    EXPECT_EQ(plain.connect_params_for(0).root_cert.source, "postgres[0].ssl_root_cert in " + path);

    auto const flagged =
        parse({"-c", path.c_str(), "-p", "9", "-l", "0.0.0.0:1", "--ca-root-file", "/ca.pem"}).values;
    EXPECT_EQ(flagged.pool_size_for(0), 9U);
    EXPECT_EQ(flagged.listen_addresses, "0.0.0.0:1");
    EXPECT_EQ(flagged.connect_params_for(0).root_cert.value, "/ca.pem");
    EXPECT_EQ(flagged.connect_params_for(1).keyword("sslrootcert"), "/ca.pem");

    EXPECT_THROW((void)parse({"-c", path.c_str(), "postgresql://x@h/db"}), config_error);
    EXPECT_THROW((void)parse({"-c", "/nonexistent/kachel.yaml"}), config_error);
}

TEST(log_filter, directive_syntax) {
    using spdlog::level::level_enum;
    EXPECT_EQ(parse_log_filter("debug"), level_enum::debug);
    EXPECT_EQ(parse_log_filter("kachel=trace"), level_enum::trace);
    EXPECT_EQ(parse_log_filter("warn,kachel=debug"), level_enum::debug);
    EXPECT_EQ(parse_log_filter("error,other=trace"), level_enum::err);
    EXPECT_EQ(parse_log_filter("other=trace"), level_enum::info);
    EXPECT_EQ(parse_log_filter("kachel=loud"), level_enum::debug);
}

TEST(command_line, cache_and_keep_alive_follow_martin) {
    ::unsetenv("DATABASE_URL");
    auto const defaults = parse({}).values;
    EXPECT_EQ(defaults.cache.tile_cache().max_bytes, 256'000'000U); // half of size_mb 512, as Martin
    EXPECT_FALSE(defaults.cache.tile_cache().expiry);
    EXPECT_EQ(defaults.keep_alive, std::chrono::seconds{75});

    auto const flags = parse({"-C", "100", "--cache-expiry", "30", "-k", "5"}).values;
    EXPECT_EQ(flags.cache.tile_cache().max_bytes, 50'000'000U);
    EXPECT_EQ(flags.cache.tile_cache().expiry, std::chrono::milliseconds{30'000});
    EXPECT_EQ(flags.keep_alive, std::chrono::seconds{5});
    EXPECT_EQ(parse({"-C", "0"}).values.cache.tile_cache().max_bytes, 0U);

    auto const path = std::string{::testing::TempDir()} + "kachel-test-cache.yaml";
    auto const from_file = [&path](std::string const& yaml, std::vector<char const*> extra = {}) {
        std::ofstream{path} << yaml;
        std::vector<char const*> args{"-c", path.c_str()};
        args.insert(args.end(), extra.begin(), extra.end());
        return parse(args).values;
    };
    auto const section =
        from_file("keep_alive: 20\ncache:\n  size_mb: 64\n  tile_expiry: 2m\n  minzoom: 3\n  maxzoom: 12\n");
    EXPECT_EQ(section.cache.tile_cache().max_bytes, 32'000'000U);
    EXPECT_EQ(section.cache.tile_cache().expiry, std::chrono::milliseconds{120'000});
    EXPECT_EQ(section.cache.tile_cache().minzoom, 3);
    EXPECT_EQ(section.cache.tile_cache().maxzoom, 12);
    EXPECT_EQ(section.keep_alive, std::chrono::seconds{20});
    EXPECT_EQ(from_file("cache:\n  size_mb: 64\n  tile_size_mb: 10\n").cache.tile_cache().max_bytes,
              10'000'000U);
    EXPECT_EQ(from_file("cache: disable\n").cache.tile_cache().max_bytes, 0U);
    EXPECT_EQ(from_file("cache_size_mb: 40\n").cache.tile_cache().max_bytes, 20'000'000U); // deprecated key
    EXPECT_EQ(from_file("tile_cache_size_mb: 7\n").cache.tile_cache().max_bytes,
              7'000'000U); // deprecated key
    EXPECT_EQ(from_file("cache:\n  tile_size_mb: 10\n", {"-C", "8"}).cache.tile_cache().max_bytes,
              4'000'000U); // flag wins
    EXPECT_THROW((void)from_file("cache: sometimes\n"), config_error);
    EXPECT_THROW((void)from_file("cache:\n  size_mb: -1\n"), config_error);
    EXPECT_THROW((void)from_file("cache:\n  maxzoom: 31\n"), config_error);
}

TEST(durations, every_form_martin_accepts) {
    using namespace std::chrono_literals;
    config::value_origin const o{"f.yaml", "k"};
    EXPECT_EQ(config::parse_duration_ms("30", o), 30s);
    EXPECT_EQ(config::parse_duration_ms("500ms", o), 500ms);
    EXPECT_EQ(config::parse_duration_ms("30s", o), 30s);
    EXPECT_EQ(config::parse_duration_ms("1m 30s", o), 90s);
    EXPECT_EQ(config::parse_duration_ms("1m30s", o), 90s);
    EXPECT_EQ(config::parse_duration_ms("2h", o), 2h);
    EXPECT_EQ(config::parse_duration_ms("1d", o), 24h);
    EXPECT_EQ(config::parse_duration_ms("1week", o), 7 * 24h);
    EXPECT_EQ(config::parse_duration_ms("2 minutes 1sec", o), 121s);
    EXPECT_EQ(config::parse_duration_ms("0s", o), 0s);
    for (auto const* bad : {"", "s", "1.5s", "-1s", "10 parsecs", "1m 30", "99999999999d"}) {
        EXPECT_THROW((void)config::parse_duration_ms(bad, o), config_error) << bad;
    }
    try {
        (void)config::parse_duration("500ms", o);
        ADD_FAILURE() << "a fraction of a second where whole seconds are kept";
    } catch (config_error const& e) {
        EXPECT_STREQ(e.what(), "f.yaml: 'k' takes whole seconds, got '500ms'");
    }
}

TEST(durations, retry_timeout_takes_infinite_and_martins_flag_name) {
    auto const c = parse({"--pg-retry-timeout", "infinite", "postgresql://h/db"});
    EXPECT_EQ(c.values.retry_timeout_for(0), config::settings::infinite_retry);
    EXPECT_EQ(parse({"--retry-timeout", "1m 30s", "postgresql://h/db"}).values.retry_timeout_for(0),
              std::chrono::seconds{90});
    EXPECT_THROW((void)parse({"--pg-retry-timeout", "forever", "postgresql://h/db"}), config_error);
}
