#pragma once

#include "postgis/function_source.hpp"
#include "postgis/publish_config.hpp"
#include "postgis/table_source.hpp"
#include "tiles/id_resolver.hpp"

#include <string>
#include <vector>

namespace kachel::postgis {

/// What one database publishes, before bounds are computed.
struct resolution {
    std::vector<table_spec> tables;
    /// Parallel to `tables`: true when bounds must still be computed (none configured).
    std::vector<bool> needs_bounds;
    std::vector<function_spec> functions;
    /// Configured sources that cannot be published, one sentence each (`on_invalid` decides).
    std::vector<std::string> problems;
    /// Problems that stop startup whatever `on_invalid` says: a row filter that does not fit its
    /// table (serving the table without it would publish rows the config meant to hide).
    std::vector<std::string> fatal_problems;
};

/// Applies the config to what discovery found (martin-compat 2.2, 2.3, 2.7, 3.6, 6.2): configured
/// tables (by id), auto-published tables, configured functions, auto-published functions, in
/// that order, each claiming its id from `ids` with `identity` (host:port/db) in the signature.
/// `all_schemas` lists every schema of the database, to tell "no such schema" from "nothing to
/// publish in it". Pure: no database access.
[[nodiscard]] resolution resolve_sources(publish_config const& config, std::vector<table_info> const& tables,
                                         std::vector<function_info> const& functions,
                                         std::vector<std::string> const& all_schemas,
                                         std::string const& identity, tiles::id_resolver& ids);

} // namespace kachel::postgis
