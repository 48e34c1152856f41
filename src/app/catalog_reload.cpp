#include "app/catalog_reload.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace kachel::app {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

void count_reload(std::string const& connection, std::string_view outcome) {
    global_metrics().count("kachel_catalog_reloads_total",
                           "Catalog reloads of each database, by outcome (changed, unchanged, failed).",
                           {{"connection", connection}, {"outcome", std::string{outcome}}});
}

} // namespace

merged_sources merge_sources(std::span<std::shared_ptr<tiles::tile_source const> const> current,
                             postgis::published_database const& found) {
    std::map<std::string_view, std::shared_ptr<tiles::tile_source const> const*> before;
    for (auto const& source : current) {
        before.emplace(source->id(), &source);
    }
    merged_sources out;
    std::set<std::string_view> seen;
    auto const take = [&](std::shared_ptr<tiles::tile_source const> fresh) {
        auto const it = before.find(fresh->id());
        if (it == before.end()) {
            out.changes.added.push_back(fresh->id());
        } else if (postgis::fingerprint(**it->second) == postgis::fingerprint(*fresh)) {
            fresh = *it->second; // unchanged: its cached tiles stay valid
        } else {
            out.changes.changed.push_back(fresh->id());
        }
        out.sources.push_back(std::move(fresh));
        seen.insert(out.sources.back()->id());
    };
    for (auto const& spec : found.tables) {
        take(postgis::make_source(spec, found));
    }
    for (auto const& spec : found.functions) {
        take(postgis::make_source(spec, found));
    }
    for (auto const& source : current) {
        if (!seen.contains(source->id())) {
            out.changes.removed.push_back(source->id());
        }
    }
    return out;
}

struct catalog_reloader::part_state {
    part_state(database_part p, asio::any_io_executor const& executor)
        : part(std::move(p)), timer(executor) {}
    database_part part;
    asio::steady_timer timer;
    std::optional<clock::time_point> requested; ///< when a reload was asked for, until it starts
    asio::cancellation_signal cancel;           ///< cancels the reload under way (stop)
    bool running = false;
};

catalog_reloader::catalog_reloader(asio::any_io_executor executor, std::vector<database_part> parts,
                                   tiles::id_resolver& ids, tiles::tile_cache* cache)
    : m_executor(std::move(executor)), m_ids(&ids), m_cache(cache) {
    for (auto& part : parts) {
        m_parts.push_back(std::make_unique<part_state>(std::move(part), m_executor));
    }
}

catalog_reloader::~catalog_reloader() = default;

void catalog_reloader::start() {
    for (std::size_t i = 0; i < m_parts.size(); ++i) {
        asio::co_spawn(m_executor, run(shared_from_this(), i), log_failure("Catalog reloads"));
    }
}

void catalog_reloader::stop() {
    m_stopped = true;
    for (auto const& p : m_parts) {
        p->timer.cancel();
        p->cancel.emit(asio::cancellation_type::terminal);
    }
}

bool catalog_reloader::busy() const noexcept {
    return std::any_of(m_parts.begin(), m_parts.end(), [](auto const& p) { return p->running; });
}

void catalog_reloader::request(std::size_t index) {
    if (index >= m_parts.size() || m_stopped) {
        return;
    }
    auto& p = *m_parts[index];
    if (!p.requested) {
        p.requested = clock::now();
        p.timer.cancel(); // the loop sets the timer for the request
    }
}

std::vector<std::shared_ptr<tiles::tile_source const>> catalog_reloader::sources() const {
    std::vector<std::shared_ptr<tiles::tile_source const>> out;
    for (auto const& p : m_parts) {
        out.insert(out.end(), p->part.sources.begin(), p->part.sources.end());
    }
    return out;
}

asio::awaitable<void> catalog_reloader::run(std::shared_ptr<catalog_reloader> self, std::size_t index) {
    auto& p = *self->m_parts[index];
    auto last = clock::now();
    while (!self->m_stopped) {
        auto deadline = clock::time_point::max();
        if (p.requested) {
            deadline = *p.requested + debounce;
        } else if (p.part.interval.count() > 0) {
            deadline = last + p.part.interval;
        }
        p.timer.expires_at(deadline);
        auto [ec] = co_await p.timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (self->m_stopped) {
            co_return;
        }
        if (ec) {
            continue; // a request came: wait for its deadline
        }
        p.requested.reset();
        p.running = true;
        try {
            co_await self->reload(index);
        } catch (std::exception const& e) {
            // Whatever went wrong, the catalog stays as it was and the next reload comes.
            spdlog::error("Reloading the catalog of {} failed: {}", p.part.label, e.what());
        }
        p.running = false;
        last = clock::now();
    }
}

asio::awaitable<void> catalog_reloader::reload(std::size_t index) {
    auto& state = *m_parts[index];
    auto& part = state.part;
    auto const began = clock::now();
    // The server runs: a configured source that cannot be published any more goes with a
    // warning, instead of stopping anything.
    auto config = part.config;
    config.on_invalid = postgis::invalid_policy::warn;
    postgis::published_database found;
    std::string failure;
    try {
        // Cancelled by stop(): the database's statements end, and the connection goes back.
        found = co_await asio::co_spawn(
            m_executor, postgis::async_rediscover_database(postgis::route_of(part.published), config, *m_ids),
            asio::bind_cancellation_slot(state.cancel.slot(), asio::use_awaitable));
    } catch (std::exception const& e) {
        failure = e.what();
    }
    if (m_stopped) {
        co_return;
    }
    if (!failure.empty()) {
        count_reload(part.label, "failed");
        spdlog::warn("Reloading the catalog of {} failed: {}; it stays as it was, and is tried again {}",
                     part.label, failure,
                     part.interval.count() > 0 ? fmt::format("in {} s", part.interval.count() / 1000)
                                               : std::string{"at the next schema change"});
        co_return;
    }
    auto merged = merge_sources(part.sources, found);
    part.published = std::move(found);
    part.sources = std::move(merged.sources);
    auto const& changes = merged.changes;
    auto const took = std::chrono::duration<double, std::milli>(clock::now() - began).count();
    if (changes.any()) {
        if (m_publish) {
            m_publish(sources());
        }
        // After the new catalog: a request that started on the old one and stores its tile
        // stores it under the old instance's cache name, which the new source never reads.
        std::size_t dropped = 0;
        for (auto const* ids : {&changes.changed, &changes.removed}) {
            for (auto const& id : *ids) {
                dropped += m_cache != nullptr ? m_cache->drop_source(id) : 0;
            }
        }
        count_reload(part.label, "changed");
        spdlog::info("Catalog of {} reloaded in {:.0f} ms: added [{}], changed [{}], removed [{}]; {} cached "
                     "tile(s) dropped",
                     part.label, took, fmt::join(changes.added, ", "), fmt::join(changes.changed, ", "),
                     fmt::join(changes.removed, ", "), dropped);
    } else {
        count_reload(part.label, "unchanged");
        spdlog::debug("Catalog of {} reloaded in {:.0f} ms: unchanged", part.label, took);
    }
    if (m_reloaded) {
        m_reloaded(index, part.published, changes);
    }
}

} // namespace kachel::app
