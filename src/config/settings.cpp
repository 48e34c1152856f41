#include "config/settings.hpp"

#include <fmt/format.h>

namespace kachel::config {

pg::connect_params settings::connect_params_for(std::size_t i) const {
    auto const& entry = postgres.at(i);
    pg::tls_overrides overrides;
    if (ca_root_file) {
        overrides.root_cert = pg::sourced_value{*ca_root_file, "--ca-root-file"};
    } else {
        overrides.root_cert = entry.ssl_root_cert;
    }
    overrides.cert = entry.ssl_cert;
    overrides.key = entry.ssl_key;
    auto params = pg::make_connect_params(entry.connection_string, overrides, entry.origin);
    params.application_name = postgres.size() == 1 ? "kachel" : fmt::format("kachel/db{}", i + 1);
    return params;
}

std::size_t settings::pool_size_for(std::size_t i) const {
    return pool_size.value_or(postgres.at(i).pool_size.value_or(default_pool_size));
}

std::chrono::seconds settings::retry_timeout_for(std::size_t i) const {
    return retry_timeout.value_or(postgres.at(i).retry_timeout.value_or(default_retry_timeout));
}

bool settings::prepared_statements_for(std::size_t i) const {
    return prepared_statements.value_or(postgres.at(i).prepared_statements.value_or(true));
}

pg::pool_options settings::pool_options_for(std::size_t i, std::string name) const {
    pg::pool_options out;
    out.max_size = pool_size_for(i);
    out.acquire_timeout = acquire_timeout_for(i);
    out.name = std::move(name);
    out.prepared_statements = prepared_statements_for(i);
    out.session_settings =
        pg::with_overrides(pg::default_session_settings(), postgres.at(i).session_settings);
    return out;
}

std::chrono::milliseconds settings::reload_interval_for(std::size_t i) const {
    return reload_interval.value_or(postgres.at(i).reload_interval.value_or(default_reload_interval));
}

std::chrono::milliseconds settings::acquire_timeout_for(std::size_t i) const {
    return postgres.at(i).acquire_timeout.value_or(default_acquire_timeout);
}

postgis::publish_config settings::publish_config_for(std::size_t i) const {
    auto out = postgres.at(i).publish;
    if (default_srid) {
        out.default_srid = default_srid;
    }
    if (auto_bounds) {
        out.auto_bounds = *auto_bounds;
    }
    if (max_feature_count) {
        out.max_feature_count = max_feature_count;
    }
    if (notify_changes) {
        out.notify_changes = *notify_changes;
    }
    out.on_invalid = on_invalid;
    return out;
}

tiles::tile_cache_options cache_settings::tile_cache() const {
    tiles::tile_cache_options out;
    std::int64_t const tile_mb = tile_size_mb.value_or(size_mb / 2);
    out.max_bytes = size_mb == 0 ? 0 : static_cast<std::size_t>(tile_mb) * 1'000'000;
    if (auto const e = tile_expiry ? tile_expiry : expiry) {
        out.expiry = std::chrono::duration_cast<std::chrono::milliseconds>(*e);
    }
    out.idle_timeout = tile_idle_timeout ? tile_idle_timeout : idle_timeout;
    out.minzoom = minzoom;
    out.maxzoom = maxzoom;
    return out;
}

} // namespace kachel::config
