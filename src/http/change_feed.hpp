#pragma once

#include "tiles/tile_ranges.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kachel::http {

/// What changed in some sources' tiles: the area a change notification or a purge reached.
struct change_event {
    std::vector<std::string> sources;
    std::vector<tiles::lonlat_box> boxes; ///< none: anywhere
    double margin = 0;                    ///< how far around the boxes tiles changed, in tiles
    std::optional<std::uint32_t> minzoom; ///< only these zooms changed, when set
    std::optional<std::uint32_t> maxzoom;
};

/// The event's JSON: `{"sources": [...], "boxes": [[w,s,e,n], ...], "margin": m}`, with
/// `minzoom`/`maxzoom` when set (the stream's `change` event).
[[nodiscard]] std::string to_json(change_event const& event);

/// The events behind `/_/changes`: what changed, for clients that show live data (the web UI
/// reloads exactly the tiles an event reaches). Publishing is thread-safe and never waits for a
/// client: each subscriber has a bounded queue, and one that falls too far behind gets a single
/// `reset` event (reload everything) in place of what it missed.
class change_feed {
  public:
    /// Most events a subscriber may have waiting before they are replaced by a `reset`.
    static constexpr std::size_t max_pending = 256;

    class subscriber;

    /// A new subscriber whose waits run on `executor` (the client connection's loop).
    [[nodiscard]] std::shared_ptr<subscriber> subscribe(boost::asio::any_io_executor const& executor);

    /// Sends `event` to every subscriber as an SSE `change` event.
    void publish(change_event const& event);
    /// Sends an SSE event named `name` with the JSON `data` to every subscriber.
    void publish(std::string_view name, std::string_view data);
    /// Ends every stream (shutdown); later subscribers end at once.
    void close();

    /// Subscribers connected now (after close(), those whose streams have not ended yet).
    [[nodiscard]] std::size_t subscribers() const;

  private:
    mutable std::mutex m_mutex;
    std::vector<std::weak_ptr<subscriber>> m_subscribers;
    bool m_closed = false;
};

/// One client of the feed.
class change_feed::subscriber : public std::enable_shared_from_this<subscriber> {
  public:
    explicit subscriber(boost::asio::any_io_executor const& executor);
    subscriber(subscriber const&) = delete;
    subscriber& operator=(subscriber const&) = delete;

    /// Waits up to `idle` for events. \returns the SSE text of the events waiting (empty when
    /// `idle` passed without any), or nullopt once the feed is closed.
    [[nodiscard]] boost::asio::awaitable<std::optional<std::string>>
    async_next(std::chrono::steady_clock::duration idle);

  private:
    friend class change_feed;
    void push(std::string const& frame);
    void end();
    /// Makes a pending async_next return (on the subscriber's executor).
    void wake();

    boost::asio::steady_timer m_timer; ///< waited on by async_next; cancelled to wake it
    std::mutex m_mutex;
    std::vector<std::string> m_pending;
    bool m_overflowed = false;
    bool m_ended = false;
    bool m_wake_posted = false;
};

} // namespace kachel::http
