#include "core/metrics.hpp"

#include <fmt/format.h>

#include <mutex>

namespace kachel {

namespace {

std::string escape(std::string_view v) {
    std::string out;
    for (char const c : v) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

metrics::labels join(metrics::labels const& constant, metrics::labels own) {
    own.insert(own.end(), constant.begin(), constant.end());
    return own;
}

std::string number(double v) {
    return fmt::format("{}", v);
}

} // namespace

std::string format_labels(metrics::labels const& labels) {
    if (labels.empty()) {
        return {};
    }
    std::string out = "{";
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        out += fmt::format("{}=\"{}\"", labels[i].first, escape(labels[i].second));
    }
    out += '}';
    return out;
}

void metrics::histogram::observe(double v) noexcept {
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        if (v <= bounds[i]) {
            counts[i].fetch_add(1, std::memory_order_relaxed);
        }
    }
    count.fetch_add(1, std::memory_order_relaxed);
    sum.fetch_add(v, std::memory_order_relaxed);
}

void metrics::count_request(std::string_view endpoint, std::string_view method, unsigned status,
                            double seconds) {
    auto const key = std::tuple{endpoint, method, status};
    {
        std::shared_lock const lock{m_mutex};
        if (auto const it = m_request_index.find(key); it != m_request_index.end()) {
            it->second.count->fetch_add(1, std::memory_order_relaxed);
            it->second.durations->observe(seconds);
            return;
        }
    }
    std::unique_lock const lock{m_mutex};
    auto it = m_request_index.find(key);
    if (it == m_request_index.end()) {
        labels const l{{"endpoint", std::string{endpoint}},
                       {"method", std::string{method}},
                       {"status", std::to_string(status)}};
        request_series const series{&m_requests[l], &m_request_durations[l]};
        it = m_request_index.emplace(std::tuple{std::string{endpoint}, std::string{method}, status}, series)
                 .first;
    }
    it->second.count->fetch_add(1, std::memory_order_relaxed);
    it->second.durations->observe(seconds);
}

void metrics::observe_query(std::string_view source, double seconds) {
    labels const l{{"source", std::string{source}}};
    {
        std::shared_lock const lock{m_mutex};
        if (auto const it = m_query_durations.find(l); it != m_query_durations.end()) {
            it->second.observe(seconds);
            return;
        }
    }
    std::unique_lock const lock{m_mutex};
    m_query_durations[l].observe(seconds);
}

void metrics::count_cache_lookup(unsigned z, bool hit) noexcept {
    if (z <= 30) {
        m_cache_lookups[(hit ? 0 : 31) + z].fetch_add(1, std::memory_order_relaxed);
    }
}

void metrics::count_connection_attempt(std::string_view connection, std::string_view failure_reason) {
    std::unique_lock const lock{m_mutex};
    ++m_attempts[labels{{"connection", std::string{connection}}}];
    if (!failure_reason.empty()) {
        ++m_failures[labels{{"connection", std::string{connection}},
                            {"reason", std::string{failure_reason}}}];
    }
}

void metrics::count(std::string_view name, std::string_view help, labels const& label_set, std::uint64_t n) {
    std::unique_lock const lock{m_mutex};
    auto& family = m_counters[std::string{name}];
    family.first = help;
    family.second[label_set] += n;
}

void metrics::observe(std::string_view name, std::string_view help, labels const& label_set, double seconds) {
    std::unique_lock const lock{m_mutex};
    auto& family = m_histograms[std::string{name}];
    family.first = help;
    family.second[label_set].observe(seconds);
}

void metrics::observe_tile_size(std::string_view source, unsigned z, std::size_t bytes) {
    labels key{{"source", std::string{source}}, {"zoom", std::to_string(z)}};
    {
        std::shared_lock const lock{m_mutex};
        if (auto const it = m_tile_sizes.find(key); it != m_tile_sizes.end()) {
            it->second.observe(static_cast<double>(bytes));
            return;
        }
    }
    std::unique_lock const lock{m_mutex};
    auto [it, added] = m_tile_sizes.try_emplace(std::move(key));
    if (added) {
        it->second.bounds = size_buckets;
    }
    it->second.observe(static_cast<double>(bytes));
}

void metrics::set_certificate_expiry(std::string_view connection, std::string_view certificate,
                                     std::string_view subject, double unix_seconds) {
    std::unique_lock const lock{m_mutex};
    m_cert_expiry[labels{{"connection", std::string{connection}},
                         {"certificate", std::string{certificate}},
                         {"subject", std::string{subject}}}] = unix_seconds;
}

std::size_t metrics::add_gauges(std::function<std::vector<gauge_sample>()> collector) {
    std::unique_lock const lock{m_mutex};
    auto const token = m_next_collector++;
    m_collectors.emplace(token, std::move(collector));
    return token;
}

void metrics::remove_gauges(std::size_t token) {
    std::unique_lock const lock{m_mutex};
    m_collectors.erase(token);
}

void metrics::set_constant_labels(labels constant) {
    std::unique_lock const lock{m_mutex};
    m_constant = std::move(constant);
}

std::string metrics::render() const {
    std::shared_lock const lock{m_mutex};
    std::string out;
    auto counter_family = [&](std::string_view name, std::string_view help, auto const& series) {
        out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
        for (auto const& [l, v] : series) {
            out += fmt::format("{}{} {}\n", name, format_labels(join(m_constant, l)), std::uint64_t{v});
        }
    };
    auto histogram_family = [&](std::string_view name, std::string_view help,
                                std::map<labels, histogram> const& series) {
        out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
        for (auto const& [l, h] : series) {
            for (std::size_t i = 0; i < h.bounds.size(); ++i) {
                auto with_le = l;
                with_le.emplace_back("le", number(h.bounds[i]));
                out += fmt::format("{}_bucket{} {}\n", name, format_labels(join(m_constant, with_le)),
                                   h.counts[i].load());
            }
            auto inf = l;
            inf.emplace_back("le", "+Inf");
            out +=
                fmt::format("{}_bucket{} {}\n", name, format_labels(join(m_constant, inf)), h.count.load());
            out +=
                fmt::format("{}_sum{} {}\n", name, format_labels(join(m_constant, l)), number(h.sum.load()));
            out += fmt::format("{}_count{} {}\n", name, format_labels(join(m_constant, l)), h.count.load());
        }
    };
    counter_family("kachel_http_requests_total", "HTTP requests by route pattern, method and status.",
                   m_requests);
    histogram_family("kachel_http_requests_duration_seconds", "HTTP request latency.", m_request_durations);
    histogram_family("kachel_postgres_query_duration_seconds", "Database time of tile queries, by source.",
                     m_query_durations);
    histogram_family("kachel_tile_size_bytes",
                     "Size of the tiles sources made (cache misses), by source and zoom.", m_tile_sizes);
    counter_family("kachel_postgres_connection_attempts_total", "Connection attempts to PostgreSQL.",
                   m_attempts);
    std::map<labels, std::uint64_t> cache_lookups;
    for (unsigned i = 0; i < m_cache_lookups.size(); ++i) {
        if (auto const n = m_cache_lookups[i].load(std::memory_order_relaxed); n != 0) {
            cache_lookups[labels{
                {"cache", "tile"}, {"result", i < 31 ? "hit" : "miss"}, {"zoom", std::to_string(i % 31)}}] =
                n;
        }
    }
    counter_family("kachel_tile_cache_requests_total", "Tile cache lookups by result and zoom.",
                   cache_lookups);
    counter_family("kachel_postgres_connection_failures_total", "Failed connection attempts, by reason.",
                   m_failures);
    for (auto const& [name, family] : m_counters) {
        counter_family(name, family.first, family.second);
    }
    for (auto const& [name, family] : m_histograms) {
        histogram_family(name, family.first, family.second);
    }
    out += "# HELP kachel_postgres_certificate_expiry_seconds Expiry of certificates in use (Unix time).\n"
           "# TYPE kachel_postgres_certificate_expiry_seconds gauge\n";
    for (auto const& [l, v] : m_cert_expiry) {
        out += fmt::format("kachel_postgres_certificate_expiry_seconds{} {}\n",
                           format_labels(join(m_constant, l)), number(v));
    }
    std::map<std::string, std::vector<gauge_sample>> gauges;
    for (auto const& [token, collect] : m_collectors) {
        for (auto& sample : collect()) {
            gauges[sample.name].push_back(std::move(sample));
        }
    }
    for (auto const& [name, samples] : gauges) {
        out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, samples.front().help, name);
        for (auto const& sample : samples) {
            out += fmt::format("{}{} {}\n", name, format_labels(join(m_constant, sample.label_set)),
                               number(sample.value));
        }
    }
    return out;
}

metrics& global_metrics() {
    static metrics instance;
    return instance;
}

} // namespace kachel
