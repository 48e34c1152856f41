#include "core/log.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <fmt/chrono.h>
#include <nlohmann/json.hpp>

#include <spdlog/sinks/stdout_sinks.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>

namespace kachel {

namespace {

std::optional<spdlog::level::level_enum> level_from_name(std::string_view name) noexcept {
    using spdlog::level::level_enum;
    if (name == "trace") {
        return level_enum::trace;
    }
    if (name == "debug") {
        return level_enum::debug;
    }
    if (name == "info") {
        return level_enum::info;
    }
    if (name == "warn" || name == "warning") {
        return level_enum::warn;
    }
    if (name == "error") {
        return level_enum::err;
    }
    if (name == "off") {
        return level_enum::off;
    }
    return std::nullopt;
}

log_format g_format = log_format::full; // set once, before any thread starts

/// The fields of the line being logged on this thread (log_with_fields), for the json formatter.
thread_local std::span<log_field const> t_fields;

/// One JSON object per line: timestamp, level, target, message and the fields.
class json_formatter final : public spdlog::formatter {
  public:
    void format(spdlog::details::log_msg const& msg, spdlog::memory_buf_t& dest) override {
        nlohmann::json line;
        auto const since_epoch = msg.time.time_since_epoch();
        auto const seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
        auto const micros =
            std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - seconds).count();
        line["timestamp"] =
            fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06}Z", std::chrono::sys_seconds{seconds}, micros);
        auto const level = spdlog::level::to_string_view(msg.level);
        std::string upper{level.data(), level.size()};
        for (auto& c : upper) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        line["level"] = upper == "WARNING" ? "WARN" : upper;
        line["target"] = "kachel";
        line["message"] = std::string_view{msg.payload.data(), msg.payload.size()};
        auto& fields = line["fields"] = nlohmann::json::object();
        for (auto const& f : t_fields) {
            fields[std::string{f.name}] = f.number ? nlohmann::json(*f.number) : nlohmann::json(f.text);
        }
        auto const text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        dest.append(text.data(), text.data() + text.size());
        dest.push_back('\n');
    }
    [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<json_formatter>();
    }
};

} // namespace

spdlog::level::level_enum parse_log_filter(std::string_view filter) noexcept {
    std::optional<spdlog::level::level_enum> global;
    std::optional<spdlog::level::level_enum> own;
    bool valid = true;
    while (!filter.empty()) {
        auto const comma = filter.find(',');
        auto const item = trim(filter.substr(0, comma));
        filter = comma == std::string_view::npos ? std::string_view{} : filter.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        auto const eq = item.find('=');
        if (eq == std::string_view::npos) {
            // Either a bare level or a bare target (which means "everything for that target").
            if (auto const lvl = level_from_name(item)) {
                global = lvl;
            } else if (item == "kachel") {
                own = spdlog::level::trace;
            }
            continue;
        }
        auto const target = trim(item.substr(0, eq));
        auto const lvl = level_from_name(trim(item.substr(eq + 1)));
        if (!lvl) {
            valid = false;
            continue;
        }
        if (target == "kachel" || target.starts_with("kachel::") || target == "martin") {
            own = lvl;
        }
    }
    if (!valid) {
        return spdlog::level::debug;
    }
    return own.value_or(global.value_or(spdlog::level::info));
}

std::optional<log_format> parse_log_format(std::string_view text) noexcept {
    for (auto const& [name, format] :
         {std::pair{"full", log_format::full}, std::pair{"compact", log_format::compact},
          std::pair{"bare", log_format::bare}, std::pair{"pretty", log_format::pretty},
          std::pair{"json", log_format::json}}) {
        if (iequals(text, name)) {
            return format;
        }
    }
    return std::nullopt;
}

log_format current_log_format() noexcept {
    return g_format;
}

void init_logging(bool on_stderr) {
    char const* filter = std::getenv("KACHEL_LOG");
    if (filter == nullptr) {
        filter = std::getenv("RUST_LOG");
    }
    std::string_view format_variable = "KACHEL_LOG_FORMAT";
    char const* format_text = std::getenv("KACHEL_LOG_FORMAT");
    if (format_text == nullptr) {
        format_variable = "RUST_LOG_FORMAT";
        format_text = std::getenv("RUST_LOG_FORMAT");
    }
    auto format = log_format::full;
    std::string format_problem;
    if (format_text != nullptr && *format_text != '\0') {
        if (auto const f = parse_log_format(format_text)) {
            format = *f;
        } else {
            format_problem = fmt::format("{}={} is not a log format: use full, compact, bare, pretty or json",
                                         format_variable, format_text);
        }
    }
    g_format = format;
    spdlog::drop("kachel");
    auto logger = on_stderr ? spdlog::stderr_logger_mt("kachel") : spdlog::stdout_logger_mt("kachel");
    switch (format) {
    case log_format::full:
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
        break;
    case log_format::compact:
        logger->set_pattern("%H:%M:%S %^%L%$ %v", spdlog::pattern_time_type::utc);
        break;
    case log_format::bare:
        logger->set_pattern("%^%l%$ %v");
        break;
    case log_format::pretty:
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$\n    %v", spdlog::pattern_time_type::utc);
        break;
    case log_format::json:
        logger->set_formatter(std::make_unique<json_formatter>());
        break;
    }
    logger->set_level(filter == nullptr ? spdlog::level::info : parse_log_filter(filter));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
    if (!format_problem.empty()) {
        throw config_error{format_problem};
    }
}

void log_with_fields(spdlog::level::level_enum level, std::string_view message,
                     std::span<log_field const> fields) {
    if (g_format == log_format::json) {
        t_fields = fields;
        spdlog::log(level, "{}", message);
        t_fields = {};
        return;
    }
    std::string text{message};
    for (auto const& f : fields) {
        text += ' ';
        text += f.name;
        text += '=';
        text += f.number ? fmt::format("{}", *f.number) : std::string{f.text};
    }
    spdlog::log(level, "{}", text);
}

void log_exception(char const* what, std::exception_ptr const& failure) noexcept {
    try {
        std::rethrow_exception(failure);
    } catch (std::exception const& e) {
        spdlog::error("{} failed: {}", what, e.what());
    } catch (...) {
        spdlog::error("{} failed with an exception that is not a std::exception", what);
    }
}

} // namespace kachel
