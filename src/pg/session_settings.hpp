#pragma once

#include "pg/connection.hpp"

#include <boost/asio/awaitable.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::pg {

/// One server setting kachel asks for on every pooled connection.
struct session_setting {
    std::string name;
    std::string value;
    /// Where the wish comes from, for logs: "kachel default", "session_settings in config.yaml".
    std::string origin;
    /// true: set whatever the server has (the user's config key, kachel's statement_timeout
    /// backstop). false (kachel's defaults): kept back when the user already chose a value for
    /// this connection: `options=`/PGOPTIONS, `ALTER ROLE` or `ALTER DATABASE`.
    bool forced = false;
};

/// kachel's defaults for tile connections, which run many short queries:
/// - `max_parallel_workers_per_gather = 0`: a parallel worker is a new process that must load
///   PostGIS and PROJ before its first ST_Transform, which costs more than most tiles, and it
///   hands rows back in no fixed order (so the bytes and ETag of an unchanged tile could vary);
/// - `jit = off`: compiling a tile query costs more than running it;
/// - `plan_cache_mode = force_custom_plan`: every execution is planned for its tile, so the plan
///   (and the row order, and the bytes) of a tile never depends on what the connection ran
///   before; see docs/operations.md for the measurements behind this choice.
[[nodiscard]] std::vector<session_setting> default_session_settings();

/// `base` with each of `overrides` in place of the setting of the same name (appended when
/// `base` has none).
[[nodiscard]] std::vector<session_setting> with_overrides(std::vector<session_setting> base,
                                                          std::span<session_setting const> overrides);

/// A setting as the server has it after apply_session_settings, and why.
struct effective_setting {
    std::string name;
    std::string value;
    /// "kachel default", "connection options", "ALTER ROLE", "ALTER DATABASE", or the wish's own
    /// origin when it was forced.
    std::string origin;
};

/// Sets `wanted` in one statement (one round trip): a forced setting always, a default only when
/// the server's value for this session did not come from the connection's options or from the
/// role or database. Settings this server does not know are left out of the answer.
/// \throws database_error when the server refuses a value (the message names the setting).
boost::asio::awaitable<std::vector<effective_setting>>
async_apply_session_settings(connection& conn, std::span<session_setting const> wanted);

/// "plan_cache_mode=force_custom_plan (kachel default), jit=on (connection options)".
[[nodiscard]] std::string describe(std::span<effective_setting const> settings);

} // namespace kachel::pg
