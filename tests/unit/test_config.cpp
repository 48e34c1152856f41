#include "config/settings.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "pg/connection.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace kachel;

namespace {

config::command_line parse(std::vector<char const*> args) {
    args.insert(args.begin(), "kachel");
    return config::parse_command_line(static_cast<int>(args.size()), args.data());
}

} // namespace

TEST(command_line, defaults_match_martin) {
    ::unsetenv("DATABASE_URL");
    auto const cli = parse({});
    EXPECT_FALSE(cli.exit_code);
    EXPECT_EQ(cli.values.listen_addresses, "0.0.0.0:3000");
    EXPECT_EQ(cli.values.pool_size, 20U);
    EXPECT_TRUE(cli.values.connections.empty());
}

TEST(command_line, flags_and_positional_connections) {
    auto const cli = parse({"-l", "127.0.0.1:0", "-p", "3", "-W", "2", "--ca-root-file", "/ca.pem",
                            "postgresql://u@h/db", "host=h dbname=d"});
    EXPECT_EQ(cli.values.listen_addresses, "127.0.0.1:0");
    EXPECT_EQ(cli.values.pool_size, 3U);
    EXPECT_EQ(cli.values.workers, 2U);
    EXPECT_EQ(cli.values.ca_root_file, "/ca.pem");
    EXPECT_EQ(cli.values.connections, (std::vector<std::string>{"postgresql://u@h/db", "host=h dbname=d"}));
}

TEST(command_line, database_url_only_without_positional) {
    ::setenv("DATABASE_URL", "postgres://env@h/db", 1);
    EXPECT_EQ(parse({}).values.connections, std::vector<std::string>{"postgres://env@h/db"});
    EXPECT_EQ(parse({"postgresql://arg@h/db"}).values.connections,
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

TEST(command_line, help_and_version_exit_zero) {
    EXPECT_EQ(parse({"--version"}).exit_code, 0);
    EXPECT_EQ(parse({"-V"}).exit_code, 0);
}

TEST(redacted_conninfo, drops_the_password_in_both_forms) {
    auto const url =
        pg::redacted_conninfo("postgresql://bob:hunter2@db.example:5433/tiles?sslmode=verify-full");
    EXPECT_EQ(url.find("hunter2"), std::string::npos) << url;
    EXPECT_NE(url.find("user=bob"), std::string::npos) << url;
    EXPECT_NE(url.find("sslmode=verify-full"), std::string::npos) << url;
    auto const kv = pg::redacted_conninfo("host=h user=bob password='hunter2' sslpassword=k3y dbname=t");
    EXPECT_EQ(kv.find("hunter2"), std::string::npos) << kv;
    EXPECT_EQ(kv.find("k3y"), std::string::npos) << kv;
    auto const broken = pg::redacted_conninfo("host=h password='hunter2");
    EXPECT_EQ(broken.find("hunter2"), std::string::npos) << broken;
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
