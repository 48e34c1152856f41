// Martin's configuration keys: each is implemented, refused (startup stops) or warned, as the
// registry and docs/config.md say, and a setting that decides what is served is never ignored.

#include "config/config_file.hpp"
#include "config/martin_keys.hpp"
#include "core/error.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <sstream>

using namespace kachel;
using namespace kachel::config;

namespace {

/// Collects what the default logger writes while it lives.
class log_capture {
  public:
    log_capture() : m_sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(m_text)) {
        spdlog::default_logger()->sinks().push_back(m_sink);
    }
    log_capture(log_capture const&) = delete;
    log_capture& operator=(log_capture const&) = delete;
    ~log_capture() {
        auto& sinks = spdlog::default_logger()->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), m_sink), sinks.end());
    }
    [[nodiscard]] std::string text() const { return m_text.str(); }

  private:
    std::ostringstream m_text;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> m_sink;
};

/// A config file that sets `path` (a registry pattern) to `value`, with what it needs around it.
std::string yaml_setting(std::string const& path, std::string const& value) {
    auto const after = [&](std::string const& prefix) { return path.substr(prefix.size()); };
    auto const source = [&](std::string const& prefix, std::map<std::string, std::string> entry) {
        entry[after(prefix)] = value;
        std::string out = "postgres:\n  connection_string: host=h\n  ";
        out += prefix.find("tables") != std::string::npos ? "tables" : "functions";
        out += ":\n    s1:\n";
        for (auto const& [k, v] : entry) {
            out += "      " + k + ": " + v + "\n";
        }
        return out;
    };
    if (path.starts_with("postgres.tables.*.")) {
        return source("postgres.tables.*.", {{"schema", "public"}, {"table", "t"}});
    }
    if (path.starts_with("postgres.functions.*.")) {
        return source("postgres.functions.*.", {{"schema", "public"}, {"function", "f"}});
    }
    if (path == "postgres.connection_string") {
        return "postgres:\n  connection_string: " + value + "\n";
    }
    if (path.starts_with("postgres.")) {
        return "postgres:\n  connection_string: host=h\n  " + after("postgres.") + ": " + value + "\n";
    }
    if (path.starts_with("cache.")) {
        return "cache:\n  " + after("cache.") + ": " + value + "\n";
    }
    if (path.starts_with("mbtiles.") || path.starts_with("pmtiles.")) {
        return path.substr(0, 7) + ":\n  " + path.substr(8) + ": " + value + "\n";
    }
    if (path == "observability.metrics.add_labels") {
        return "observability:\n  metrics:\n    add_labels: " + value + "\n";
    }
    return path + ": " + value + "\n";
}

/// The dotted key as the reader names it (`*` becomes the source id of yaml_setting).
std::string dotted(std::string const& path) {
    auto out = path;
    if (auto const star = out.find('*'); star != std::string::npos) {
        out.replace(star, 1, "s1");
    }
    return out;
}

struct outcome {
    std::string error;
    std::string log;
};

outcome load(std::string const& yaml) {
    log_capture const capture;
    outcome out;
    try {
        (void)parse_config(yaml, "m.yaml", [](std::string const&) { return std::optional<std::string>{}; });
    } catch (config_error const& e) {
        out.error = e.what();
    }
    out.log = capture.text();
    return out;
}

std::vector<std::string> split_row(std::string const& line) {
    std::vector<std::string> cells;
    std::stringstream in{line.substr(1)};
    std::string cell;
    while (std::getline(in, cell, '|')) {
        auto const first = cell.find_first_not_of(' ');
        auto const last = cell.find_last_not_of(' ');
        cells.push_back(first == std::string::npos ? std::string{} : cell.substr(first, last - first + 1));
    }
    return cells;
}

std::string_view status_name(key_status s) {
    switch (s) {
    case key_status::implemented:
        return "implemented";
    case key_status::refused:
        return "refused";
    case key_status::warned:
        return "warned";
    }
    return "?";
}

} // namespace

TEST(martin_keys, docs_list_every_key_with_its_status) {
    std::ifstream in{KACHEL_DOCS_DIR "/config.md"};
    std::string line;
    bool inside = false;
    std::vector<std::pair<std::string, std::string>> documented;
    while (std::getline(in, line)) {
        if (line.starts_with("## ")) {
            inside = line == "## Martin's keys";
        } else if (inside && line.starts_with("| `")) {
            auto const cells = split_row(line);
            ASSERT_GE(cells.size(), 2U) << line;
            documented.emplace_back(cells[0].substr(1, cells[0].size() - 2), cells[1]);
        }
    }
    std::vector<std::pair<std::string, std::string>> registered;
    for (auto const& k : martin_keys()) {
        registered.emplace_back(std::string{k.path}, std::string{status_name(k.status)});
    }
    EXPECT_GT(registered.size(), 60U);
    EXPECT_EQ(documented, registered);
}

TEST(martin_keys, every_key_does_what_its_status_says) {
    for (auto const& k : martin_keys()) {
        auto const path = std::string{k.path};
        SCOPED_TRACE(path);
        auto const result = load(yaml_setting(path, std::string{k.sample}));
        auto const key = dotted(path);
        switch (k.status) {
        case key_status::implemented:
            EXPECT_EQ(result.error, "");
            EXPECT_EQ(result.log.find("not supported"), std::string::npos) << result.log;
            EXPECT_EQ(result.log.find("unrecognized"), std::string::npos) << result.log;
            break;
        case key_status::refused:
            EXPECT_NE(result.error.find("m.yaml: '" + key + "' is not supported by kachel yet"),
                      std::string::npos)
                << result.error;
            if (!k.off_value.empty()) {
                auto const off = load(yaml_setting(path, std::string{k.off_value}));
                EXPECT_EQ(off.error, "");
                EXPECT_EQ(off.log.find(key), std::string::npos) << off.log;
            }
            break;
        case key_status::warned:
            EXPECT_EQ(result.error, "");
            EXPECT_NE(result.log.find("'" + key + "' is not supported by kachel yet and is ignored"),
                      std::string::npos)
                << result.log;
            break;
        }
    }
}

TEST(martin_keys, an_unknown_key_stops_startup_only_inside_a_source) {
    auto const misspelt = load(yaml_setting("postgres.tables.*.filtr", "'pop > 1'"));
    EXPECT_NE(misspelt.error.find("m.yaml: 'postgres.tables.s1.filtr' is not a key of a table source"),
              std::string::npos)
        << misspelt.error;
    EXPECT_NE(load(yaml_setting("postgres.functions.*.minzom", "3")).error.find("function source"),
              std::string::npos);
    auto const elsewhere = load("no_such_key: 1\n");
    EXPECT_EQ(elsewhere.error, "");
    EXPECT_NE(elsewhere.log.find("ignoring unrecognized configuration key 'no_such_key'"), std::string::npos);
}

TEST(martin_keys, key_patterns_drop_list_indexes_and_source_ids) {
    EXPECT_EQ(key_pattern("postgres[1].tables.roads.filter"), "postgres.tables.*.filter");
    EXPECT_EQ(key_pattern("postgres.functions.tables.cache"), "postgres.functions.*.cache");
    EXPECT_EQ(key_pattern("postgres.tables"), "postgres.tables");
    EXPECT_EQ(key_pattern("cache.size_mb"), "cache.size_mb");
}
