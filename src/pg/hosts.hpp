#pragma once

#include "pg/connect_params.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::pg {

/// Which hosts of a multi-host connection string serve tile reads, from its
/// `target_session_attrs` (libpq's values; docs/operations.md, "Read replicas").
enum class read_target {
    spread,        ///< any, prefer-standby or unset: the standbys in turn, else the primary
    primary_only,  ///< primary, read-write: the primary alone
    standbys_only, ///< standby, read-only: the standbys alone
};

/// The items of a libpq list ("a,b,c": hosts, addresses or ports); one item for text without a comma.
[[nodiscard]] std::vector<std::string> comma_list(std::string const& text);

/// The read target a connection string asks for. \throws config_error for a value libpq 15 does
/// not know.
[[nodiscard]] read_target read_target_of(connect_params const& params);

/// One connect_params per host of a multi-host string (`host=a,b port=5432,5433`, or a URL with
/// several hosts), each with the host's own `host`, `hostaddr` and `port` and no
/// `target_session_attrs`, and its configured role (host_roles, one or none); the TLS files and
/// every other keyword stay. One element for a string
/// naming one host (or none: libpq's default). \throws config_error when the lists of hosts,
/// addresses and ports differ in length (libpq's rule: one port serves every host).
[[nodiscard]] std::vector<connect_params> split_hosts(connect_params const& params);

/// The same connection string asking libpq for the primary among its hosts
/// (`target_session_attrs=read-write`): the connections that discover sources, reload the
/// catalog and LISTEN, which a standby cannot do. A string of one host is returned as it is.
[[nodiscard]] connect_params primary_params(connect_params params);

/// The same connection string asking libpq for the first host that answers, standby or primary
/// (`target_session_attrs=any`): the catalog is read on a standby while no primary answers.
[[nodiscard]] connect_params any_host_params(connect_params params);

/// A WAL position as PostgreSQL prints a `pg_lsn` ("16/B374D848"). nullopt for anything else.
[[nodiscard]] std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept;

/// The `pg_lsn` text of a WAL position.
[[nodiscard]] std::string lsn_text(std::uint64_t lsn);

} // namespace kachel::pg
