// The settings table (src/config/setting.cpp) against the command line, the config file,
// --save-config, --help and docs/config.md.

#include "config/save_config.hpp"
#include "config/setting.hpp"
#include "config/settings.hpp"
#include "postgis/publisher.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

using namespace kachel;
using config::all_settings;
using config::flag_form;
using config::setting;
using config::setting_scope;

namespace {

config::command_line parse(std::vector<std::string> const& args) {
    std::vector<char const*> argv{"kachel"};
    for (auto const& a : args) {
        argv.push_back(a.c_str());
    }
    return config::parse_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string temp_file(std::string const& name, std::string const& text) {
    auto const path = std::string{::testing::TempDir()} + name;
    std::ofstream{path} << text;
    return path;
}

/// Every setting's effective value, by key or flag.
std::map<std::string, std::string> effective(config::settings const& s) {
    std::map<std::string, std::string> out;
    for (auto const& st : all_settings()) {
        if (st.show != nullptr) {
            out[std::string{st.key}] = st.show(s, 0);
        }
    }
    return out;
}

/// --save-config's text for `s` (with nothing published).
std::string saved(config::settings const& s) {
    return config::render_saved_config(s, std::vector<postgis::published_database>(s.postgres.size()));
}

/// `value` set through the setting's flag, or else through its key in a config file.
config::settings set_one(setting const& st, std::string const& value) {
    if (!st.flags.empty()) {
        std::vector<std::string> args{"postgresql://u@h/db", std::string{st.long_flag()}};
        if (st.form == flag_form::value) {
            args.push_back(value);
        }
        return parse(args).values;
    }
    std::string yaml;
    auto const key = std::string{st.key};
    if (st.scope == setting_scope::connection) {
        yaml = "postgres:\n  connection_string: postgresql://u@h/db\n  " + key + ": " + value + "\n";
    } else if (auto const dot = key.find('.'); dot != std::string::npos) {
        yaml = key.substr(0, dot) + ":\n  " + key.substr(dot + 1) + ": " + value +
               "\npostgres:\n  connection_string: postgresql://u@h/db\n";
    } else {
        yaml = key + ": '" + value + "'\npostgres:\n  connection_string: postgresql://u@h/db\n";
    }
    return parse({"-c", temp_file("kachel-one-setting.yaml", yaml)}).values;
}

/// --save-config, then -c on the saved file: the same effective settings and the same text.
void expect_round_trip(config::settings const& first, std::string const& what) {
    auto const text = saved(first);
    auto const second = parse({"-c", temp_file("kachel-saved.yaml", text)}).values;
    EXPECT_EQ(effective(second), effective(first)) << what << "\n" << text;
    EXPECT_EQ(saved(second), text) << what;
}

class clean_environment : public ::testing::Test {
  protected:
    void SetUp() override {
        ::unsetenv("DATABASE_URL");
        ::unsetenv("DEFAULT_SRID");
    }
};

using settings_table = clean_environment;

} // namespace

TEST_F(settings_table, every_setting_round_trips_through_save_config) {
    std::size_t checked = 0;
    for (auto const& st : all_settings()) {
        if (st.scope == setting_scope::action) {
            continue;
        }
        SCOPED_TRACE(std::string{st.key});
        ASSERT_FALSE(st.sample.empty()) << "every setting needs a sample value";
        auto const first = set_one(st, std::string{st.sample});
        // The sample must change the setting, or the round trip proves nothing.
        EXPECT_NE(st.show(first, 0), st.default_text());
        expect_round_trip(first, std::string{st.key});
        ++checked;
    }
    EXPECT_GE(checked, 25U);
}

TEST_F(settings_table, nested_sections_round_trip_too) {
    auto const path = temp_file("kachel-nested.yaml", R"(
cors:
  origin: [https://a.example, https://b.example]
  max_age: 600
observability:
  metrics:
    add_labels: {site: north, tier: "1"}
keep_alive: 9
cache: disable
postgres:
  - connection_string: postgresql://u@h/one
    pool_size: 4
    session_settings: {work_mem: 64MB}
  - connection_string: postgresql://u@h/two
    acquire_timeout: 1m
)");
    auto const first = parse({"-c", path}).values;
    ASSERT_EQ(first.http.cors.origins.size(), 2U);
    ASSERT_EQ(first.metric_labels.size(), 2U);
    expect_round_trip(first, "nested");
    auto const second = parse({"-c", temp_file("kachel-saved.yaml", saved(first))}).values;
    EXPECT_EQ(second.http.cors.origins, first.http.cors.origins);
    EXPECT_EQ(second.http.cors.max_age, 600U);
    EXPECT_EQ(second.metric_labels, first.metric_labels);
    EXPECT_EQ(second.cache.tile_cache().max_bytes, 0U);
    ASSERT_EQ(second.postgres.size(), 2U);
    ASSERT_EQ(second.postgres[0].session_settings.size(), 1U);
    EXPECT_EQ(second.postgres[0].session_settings[0].value, "64MB");
    EXPECT_EQ(second.acquire_timeout_for(1), std::chrono::minutes{1});

    auto const no_cors = parse({"-c", temp_file("kachel-nocors.yaml", "cors: false\n")}).values;
    EXPECT_FALSE(no_cors.http.cors.enabled);
    EXPECT_FALSE(parse({"-c", temp_file("kachel-saved.yaml", saved(no_cors))}).values.http.cors.enabled);
}

TEST_F(settings_table, flags_beat_the_file_whatever_the_order_of_keys) {
    auto const path =
        temp_file("kachel-order.yaml", "cache:\n  tile_size_mb: 10\n  size_mb: 64\n"
                                       "keep_alive: 20s\npostgres:\n  connection_string: host=h\n"
                                       "  pool_size: 3\n");
    auto const file = parse({"-c", path}).values;
    EXPECT_EQ(file.cache.tile_cache().max_bytes, 10'000'000U); // size_mb does not reset a tile_size_mb
    EXPECT_EQ(file.keep_alive, std::chrono::seconds{20});
    auto const flagged = parse({"-c", path, "-k", "5", "-p", "8", "-C", "8"}).values;
    EXPECT_EQ(flagged.keep_alive, std::chrono::seconds{5});
    EXPECT_EQ(flagged.pool_size_for(0), 8U);
    EXPECT_EQ(flagged.cache.tile_cache().max_bytes, 4'000'000U); // -C resets the file's share
}

TEST_F(settings_table, an_environment_variable_yields_to_its_flag_and_to_a_config_file) {
    ::setenv("DEFAULT_SRID", "3857", 1);
    EXPECT_EQ(parse({"postgresql://u@h/db"}).values.publish_config_for(0).default_srid, 3857);
    EXPECT_EQ(parse({"postgresql://u@h/db", "-d", "4326"}).values.publish_config_for(0).default_srid, 4326);
    auto const path = temp_file("kachel-env.yaml", "postgres:\n  connection_string: host=h\n");
    EXPECT_FALSE(parse({"-c", path}).values.publish_config_for(0).default_srid);
    ::setenv("DEFAULT_SRID", "wgs84", 1);
    EXPECT_FALSE(parse({"postgresql://u@h/db"}).values.publish_config_for(0).default_srid); // warned, ignored
    ::unsetenv("DEFAULT_SRID");
}

TEST_F(settings_table, help_lists_every_flag_with_its_type_and_default) {
    ::testing::internal::CaptureStdout();
    auto const cli = parse({"--help"});
    auto const help = ::testing::internal::GetCapturedStdout();
    EXPECT_EQ(cli.exit_code, 0);
    std::size_t flags = 0;
    for (auto const& st : all_settings()) {
        if (st.flags.empty()) {
            continue;
        }
        ++flags;
        auto const at = help.find(std::string{st.long_flag()});
        ASSERT_NE(at, std::string::npos) << st.long_flag() << " is missing from --help:\n" << help;
        // The option's text runs to the next option line.
        auto const end = help.find("\n  -", at);
        auto const entry = help.substr(at, end == std::string::npos ? std::string::npos : end - at);
        auto const first_words = std::string{st.help.substr(0, st.help.find(' ', 12))};
        EXPECT_NE(entry.find(first_words), std::string::npos) << entry;
        if (st.form == flag_form::value && !st.default_text().empty()) {
            EXPECT_NE(entry.find("[default: " + st.default_text() + "]"), std::string::npos) << entry;
        }
    }
    EXPECT_GE(flags, 20U);
}

namespace {

/// One row of a Markdown table in docs/config.md, with the heading it sits under.
struct doc_row {
    std::string heading;
    std::map<std::string, std::string> cells; // by column header
};

std::vector<std::string> split_row(std::string const& line) {
    std::vector<std::string> cells;
    std::string cell;
    for (std::size_t i = 1; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
            cell += '|';
            ++i;
        } else if (line[i] == '|') {
            auto const b = cell.find_first_not_of(' ');
            auto const e = cell.find_last_not_of(' ');
            cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
            cell.clear();
        } else {
            cell += line[i];
        }
    }
    return cells;
}

std::vector<doc_row> read_doc_tables(std::string const& path) {
    std::ifstream in{path};
    std::vector<doc_row> rows;
    std::string line;
    std::string heading;
    std::vector<std::string> header;
    while (std::getline(in, line)) {
        if (line.starts_with("#")) {
            heading = line;
            header.clear();
        } else if (!line.starts_with("|")) {
            header.clear();
        } else if (header.empty()) {
            header = split_row(line);
        } else if (!line.starts_with("|---")) {
            auto const cells = split_row(line);
            doc_row row{heading, {}};
            for (std::size_t i = 0; i < cells.size() && i < header.size(); ++i) {
                row.cells[header[i]] = cells[i];
            }
            rows.push_back(std::move(row));
        }
    }
    return rows;
}

bool has_code(std::string const& cell, std::string_view token) {
    return cell.find("`" + std::string{token} + "`") != std::string::npos;
}

std::string without_backticks(std::string text) {
    std::erase(text, '`');
    return text;
}

} // namespace

TEST(settings_docs, docs_config_md_and_the_table_agree) {
    auto const rows = read_doc_tables(KACHEL_DOCS_DIR "/config.md");
    ASSERT_GT(rows.size(), 40U) << "docs/config.md could not be read or has lost its tables";
    auto const command_line = "## Command line and environment";
    std::size_t checked = 0;
    for (auto const& st : all_settings()) {
        SCOPED_TRACE(st.flags.empty() ? std::string{st.key} : std::string{st.long_flag()});
        auto const expected_default = st.default_text();
        std::vector<doc_row const*> found;
        for (auto const& row : rows) {
            auto const key_cell = row.cells.contains("key") ? row.cells.at("key") : std::string{};
            bool const by_flag = row.heading == command_line && !st.flags.empty() &&
                                 row.cells.contains("flag / variable") &&
                                 has_code(row.cells.at("flag / variable"), st.long_flag());
            bool by_key = false;
            if (!st.key.empty() && st.scope == setting_scope::connection) {
                by_key = (row.heading == "## `postgres`" && row.cells.contains("key") &&
                          has_code(key_cell, st.key)) ||
                         (row.heading == command_line && row.cells.contains("config key") &&
                          has_code(row.cells.at("config key"), "postgres." + std::string{st.key}));
            } else if (!st.key.empty()) {
                auto const dot = st.key.find('.');
                by_key = (row.heading == command_line && row.cells.contains("config key") &&
                          has_code(row.cells.at("config key"), st.key)) ||
                         (dot != std::string_view::npos &&
                          row.heading == "## `" + std::string{st.key.substr(0, dot)} + "`" &&
                          row.cells.contains("key") && has_code(key_cell, st.key.substr(dot + 1)));
            }
            if (by_flag || by_key) {
                found.push_back(&row);
            }
        }
        EXPECT_FALSE(found.empty()) << "docs/config.md has no row for this setting";
        for (auto const* row : found) {
            if (auto const d = row->cells.find("default"); d != row->cells.end()) {
                EXPECT_EQ(without_backticks(d->second), expected_default) << row->heading;
            }
            if (auto const t = row->cells.find("type"); t != row->cells.end() && !st.type.empty()) {
                EXPECT_EQ(without_backticks(t->second), st.type) << row->heading;
            }
        }
        ++checked;
    }
    EXPECT_EQ(checked, all_settings().size());
    // And the other way round: every flag the docs list exists.
    for (auto const& row : rows) {
        if (row.heading != command_line || !row.cells.contains("flag / variable")) {
            continue;
        }
        auto const& cell = row.cells.at("flag / variable");
        for (auto at = cell.find("`--"); at != std::string::npos; at = cell.find("`--", at + 1)) {
            auto const flag = cell.substr(at + 1, cell.find_first_of("` ", at + 1) - at - 1);
            bool const known =
                std::any_of(all_settings().begin(), all_settings().end(), [&](setting const& st) {
                    // Any of the setting's names (`-x,--long,--alias`).
                    return ("," + std::string{st.flags} + ",").find("," + flag + ",") != std::string::npos;
                });
            EXPECT_TRUE(known) << "docs/config.md lists " << flag << ", which kachel does not have";
        }
    }
}
