#include "pg/session_settings.hpp"

#include "core/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kachel::pg {

namespace asio = boost::asio;

std::vector<session_setting> default_session_settings() {
    return {
        {"plan_cache_mode", "force_custom_plan", "kachel default", false},
        {"max_parallel_workers_per_gather", "0", "kachel default", false},
        {"jit", "off", "kachel default", false},
    };
}

std::vector<session_setting> with_overrides(std::vector<session_setting> base,
                                            std::span<session_setting const> overrides) {
    for (auto const& o : overrides) {
        auto const same =
            std::find_if(base.begin(), base.end(), [&o](auto const& b) { return b.name == o.name; });
        if (same == base.end()) {
            base.push_back(o);
        } else {
            *same = o;
        }
    }
    return base;
}

namespace {

/// Where a value in pg_settings came from, for the user; empty when it is no choice of the user's
/// for this connection (built-in default, postgresql.conf, the server's command line).
std::string_view user_origin(std::string_view source) noexcept {
    if (source == "client") {
        return "connection options";
    }
    if (source == "user") {
        return "ALTER ROLE";
    }
    if (source == "database") {
        return "ALTER DATABASE";
    }
    if (source == "database user") {
        return "ALTER ROLE IN DATABASE";
    }
    return {};
}

} // namespace

asio::awaitable<std::vector<effective_setting>>
async_apply_session_settings(connection& conn, std::span<session_setting const> wanted) {
    std::vector<effective_setting> out;
    if (wanted.empty()) {
        co_return out;
    }
    // One row per wish: (position, name, value, forced). set_config runs for the rows that must
    // be set; the others report the value the session already has and where it came from.
    std::string rows;
    std::vector<std::string> params;
    for (std::size_t i = 0; i < wanted.size(); ++i) {
        rows += fmt::format("{}({}, ${}::text, ${}::text, ${}::boolean)", i == 0 ? "" : ", ", i, 3 * i + 1,
                            3 * i + 2, 3 * i + 3);
        params.push_back(wanted[i].name);
        params.push_back(wanted[i].value);
        params.emplace_back(wanted[i].forced ? "true" : "false");
    }
    // A forced setting the server does not know reaches set_config too, which refuses it by name;
    // a default of kachel's that an older server lacks is left out.
    auto const sql = fmt::format(
        "SELECT i, CASE WHEN apply THEN set_config(name, value, false) ELSE current_setting(name) END, "
        "apply, source FROM ("
        "SELECT w.i, w.name, w.value, s.source, w.forced OR s.source IS NULL OR "
        "s.source NOT IN ('client', 'user', 'database', 'database user') AS apply "
        "FROM (VALUES {}) AS w(i, name, value, forced) LEFT JOIN pg_settings AS s USING (name) "
        "WHERE w.forced OR s.name IS NOT NULL) AS t ORDER BY i",
        rows);
    pg::result r;
    try {
        r = co_await conn.async_exec(sql, params);
    } catch (unavailable_error const&) {
        throw; // the connection, not the settings
    } catch (database_error const& e) {
        std::string asked;
        for (auto const& wish : wanted) {
            asked +=
                fmt::format("{}{}={} ({})", asked.empty() ? "" : ", ", wish.name, wish.value, wish.origin);
        }
        throw database_error{fmt_error("The server refused a session setting of {}: {}", asked, e.what())};
    }
    for (int row = 0; row < r.num_rows(); ++row) {
        auto const& wish = wanted[std::stoul(std::string{r.get(row, 0)})];
        bool const applied = r.get(row, 2) == "t";
        out.push_back(effective_setting{wish.name, std::string{r.get(row, 1)},
                                        applied ? wish.origin : std::string{user_origin(r.get(row, 3))}});
    }
    co_return out;
}

std::string describe(std::span<effective_setting const> settings) {
    std::string out;
    for (auto const& s : settings) {
        out += fmt::format("{}{}={} ({})", out.empty() ? "" : ", ", s.name, s.value, s.origin);
    }
    return out.empty() ? std::string{"none"} : out;
}

} // namespace kachel::pg
