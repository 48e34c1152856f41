#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace kachel {

/// Process-wide Prometheus metrics (text exposition format 0.0.4). Thread-safe.
class metrics {
  public:
    using labels = std::vector<std::pair<std::string, std::string>>;

    /// Counts one HTTP request (not `/_/metrics` itself) and its duration.
    void count_request(std::string_view endpoint, std::string_view method, unsigned status, double seconds);
    /// One tile query's database time.
    void observe_query(std::string_view source, double seconds);
    /// The size of a tile a source made (not one the cache gave), by source and zoom.
    void observe_tile_size(std::string_view source, unsigned z, std::size_t bytes);
    /// One tile cache lookup at zoom `z` (0..30): a hit, or a miss. Lock-free: it is on the hit path.
    void count_cache_lookup(unsigned z, bool hit) noexcept;
    /// A connection attempt to a database, and its failure reason if it failed.
    void count_connection_attempt(std::string_view connection, std::string_view failure_reason);
    /// Adds `n` to the counter `name` (a Prometheus counter family, `help` its text) with `label_set`.
    void count(std::string_view name, std::string_view help, labels const& label_set, std::uint64_t n = 1);
    /// One observation, in seconds, of the latency histogram `name` with `label_set`.
    void observe(std::string_view name, std::string_view help, labels const& label_set, double seconds);
    /// Expiry (Unix time) of a certificate involved in a connection.
    void set_certificate_expiry(std::string_view connection, std::string_view certificate,
                                std::string_view subject, double unix_seconds);
    /// One gauge value computed at scrape time.
    struct gauge_sample {
        std::string name;
        std::string help;
        labels label_set;
        double value = 0;
    };
    /// Gauges computed at scrape time (pool sizes, ...). Returns a token for remove_gauges.
    std::size_t add_gauges(std::function<std::vector<gauge_sample>()> collector);
    /// Drops the collector add_gauges returned `token` for (before what it reads is destroyed).
    void remove_gauges(std::size_t token);
    /// Constant labels added to every series (`observability.metrics.add_labels`).
    void set_constant_labels(labels constant);

    /// The exposition text.
    [[nodiscard]] std::string render() const;

    /// Upper bounds of the latency histograms, in seconds.
    static constexpr double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    /// Upper bounds of the tile size histogram, in bytes: 1 KiB to 16 MiB.
    static constexpr double size_buckets[] = {1024,   4096,    16384,   65536,   262144,
                                              524288, 1048576, 4194304, 16777216};
    static_assert(std::size(size_buckets) <= std::size(buckets));

  private:
    /// Updated with atomic operations, so that observing needs only a shared lock.
    struct histogram {
        std::span<double const> bounds{buckets};
        std::array<std::atomic<std::uint64_t>, std::size(buckets)> counts{};
        std::atomic<std::uint64_t> count{0};
        std::atomic<double> sum{0};
        void observe(double v) noexcept;
    };
    /// Exclusive to add series and settings; shared to count into existing series (requests from
    /// every thread at once, without waiting for each other) and to render.
    mutable std::shared_mutex m_mutex;
    labels m_constant;
    std::map<labels, std::atomic<std::uint64_t>> m_requests;
    std::map<labels, histogram> m_request_durations;
    /// The request series by (endpoint, method, status), found without building labels: a
    /// request allocates nothing once its series exists.
    struct request_series {
        std::atomic<std::uint64_t>* count;
        histogram* durations;
    };
    /// Orders (endpoint, method, status) keys, stored as strings or looked up as views.
    struct request_key_less {
        using is_transparent = void;
        using view = std::tuple<std::string_view, std::string_view, unsigned>;
        static view as_view(view const& k) { return k; }
        static view as_view(std::tuple<std::string, std::string, unsigned> const& k) {
            return {std::get<0>(k), std::get<1>(k), std::get<2>(k)};
        }
        template <typename A, typename B>
        bool operator()(A const& a, B const& b) const {
            return as_view(a) < as_view(b);
        }
    };
    std::map<std::tuple<std::string, std::string, unsigned>, request_series, request_key_less>
        m_request_index;
    std::map<labels, histogram> m_query_durations;
    std::map<labels, histogram> m_tile_sizes;
    std::map<labels, std::uint64_t> m_attempts;
    std::map<labels, std::uint64_t> m_failures;
    std::map<labels, double> m_cert_expiry;
    /// Counters and histograms added by count() and observe(), by name: help text, then series.
    std::map<std::string, std::pair<std::string, std::map<labels, std::uint64_t>>, std::less<>> m_counters;
    std::map<std::string, std::pair<std::string, std::map<labels, histogram>>, std::less<>> m_histograms;
    std::map<std::size_t, std::function<std::vector<gauge_sample>()>> m_collectors;
    std::size_t m_next_collector = 0;
    /// Cache lookups by zoom (0..30), hits then misses.
    std::array<std::atomic<std::uint64_t>, 62> m_cache_lookups{};
};

/// The process's metrics.
metrics& global_metrics();

/// Formats `{a="x",b="y"}` with Prometheus escaping (empty string for no labels).
[[nodiscard]] std::string format_labels(metrics::labels const& labels);

} // namespace kachel
