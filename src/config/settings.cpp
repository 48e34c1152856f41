#include "config/settings.hpp"

#include "core/error.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>

namespace kachel::config {

namespace {

/// A `hosts` list in place of the connection string's host: libpq's lists of hosts and ports,
/// and each host's role. A host without a port gets the connection string's, else PGPORT's, else
/// 5432, when another host names one.
void apply_hosts(pg::connect_params& params, postgres_settings const& entry) {
    for (auto const* name : {"host", "hostaddr"}) {
        if (auto const value = params.keyword(name)) {
            throw config_error{fmt_error("{}: the connection string names {} {} and 'hosts' lists the hosts: "
                                         "keep one of the two (a URL without a host: postgresql://user@/gis)",
                                         entry.origin, name, *value)};
        }
    }
    auto fallback = params.keyword("port");
    if (fallback && fallback->find(',') != std::string::npos) {
        throw config_error{fmt_error("{}: the connection string names ports {} and 'hosts' lists the hosts: "
                                     "give each host its port in 'hosts'",
                                     entry.origin, *fallback)};
    }
    bool const ports_named = fallback || std::any_of(entry.hosts.begin(), entry.hosts.end(),
                                                     [](postgres_host const& h) { return !h.port.empty(); });
    if (!fallback) {
        char const* env = std::getenv("PGPORT");
        fallback = env != nullptr && *env != '\0' ? env : "5432";
    }
    std::vector<std::string> hosts;
    std::vector<std::string> ports;
    params.host_roles.clear();
    for (auto const& h : entry.hosts) {
        hosts.push_back(h.host);
        ports.push_back(h.port.empty() ? *fallback : h.port);
        params.host_roles.push_back(pg::sourced_value{h.role, h.origin});
    }
    params.set_keyword("host", fmt::format("{}", fmt::join(hosts, ",")));
    if (ports_named) {
        params.set_keyword("port", fmt::format("{}", fmt::join(ports, ",")));
    }
}

} // namespace

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
    if (!entry.hosts.empty()) {
        apply_hosts(params, entry);
    }
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
