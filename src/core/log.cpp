#include "core/log.hpp"

#include "core/text.hpp"

#include <spdlog/sinks/stdout_sinks.h>

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

void init_logging() {
    char const* filter = std::getenv("KACHEL_LOG");
    if (filter == nullptr) {
        filter = std::getenv("RUST_LOG");
    }
    auto logger = spdlog::stdout_logger_mt("kachel");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    logger->set_level(filter == nullptr ? spdlog::level::info : parse_log_filter(filter));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
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
