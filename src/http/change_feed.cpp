#include "http/change_feed.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace kachel::http {

namespace asio = boost::asio;

std::string to_json(change_event const& event) {
    nlohmann::json boxes = nlohmann::json::array();
    for (auto const& b : event.boxes) {
        boxes.push_back({b.west, b.south, b.east, b.north});
    }
    nlohmann::json out{{"sources", event.sources}, {"boxes", std::move(boxes)}, {"margin", event.margin}};
    if (event.minzoom) {
        out["minzoom"] = *event.minzoom;
    }
    if (event.maxzoom) {
        out["maxzoom"] = *event.maxzoom;
    }
    return out.dump();
}

std::shared_ptr<change_feed::subscriber> change_feed::subscribe(asio::any_io_executor const& executor) {
    auto sub = std::make_shared<subscriber>(executor);
    std::lock_guard const lock{m_mutex};
    std::erase_if(m_subscribers, [](auto const& weak) { return weak.expired(); });
    if (m_closed) {
        sub->end();
    } else {
        m_subscribers.push_back(sub);
    }
    return sub;
}

void change_feed::publish(change_event const& event) {
    publish("change", to_json(event));
}

void change_feed::publish(std::string_view name, std::string_view data) {
    // An SSE frame: the data is one line of JSON, so one data field carries it.
    auto const frame = fmt::format("event: {}\ndata: {}\n\n", name, data);
    std::lock_guard const lock{m_mutex};
    std::erase_if(m_subscribers, [&](auto const& weak) {
        auto sub = weak.lock();
        if (!sub) {
            return true;
        }
        sub->push(frame);
        return false;
    });
}

void change_feed::close() {
    std::lock_guard const lock{m_mutex};
    m_closed = true;
    for (auto const& weak : m_subscribers) {
        if (auto sub = weak.lock()) {
            sub->end();
        }
    }
}

std::size_t change_feed::subscribers() const {
    std::lock_guard const lock{m_mutex};
    return static_cast<std::size_t>(std::count_if(m_subscribers.begin(), m_subscribers.end(),
                                                  [](auto const& weak) { return !weak.expired(); }));
}

change_feed::subscriber::subscriber(asio::any_io_executor const& executor) : m_timer(executor) {}

void change_feed::subscriber::push(std::string const& frame) {
    std::lock_guard const lock{m_mutex};
    if (m_ended) {
        return;
    }
    if (m_pending.size() >= max_pending) {
        // Too far behind: what it missed is replaced by one reset.
        m_pending.clear();
        m_overflowed = true;
    } else if (!m_overflowed) {
        m_pending.push_back(frame);
    }
    wake();
}

void change_feed::subscriber::end() {
    std::lock_guard const lock{m_mutex};
    m_ended = true;
    wake();
}

void change_feed::subscriber::wake() {
    // Called with m_mutex held. The timer belongs to the subscriber's loop: cancel it there.
    if (m_wake_posted) {
        return;
    }
    m_wake_posted = true;
    asio::post(m_timer.get_executor(), [weak = weak_from_this()] {
        if (auto self = weak.lock()) {
            {
                std::lock_guard const lock{self->m_mutex};
                self->m_wake_posted = false;
            }
            self->m_timer.cancel();
        }
    });
}

asio::awaitable<std::optional<std::string>>
change_feed::subscriber::async_next(std::chrono::steady_clock::duration idle) {
    auto const until = std::chrono::steady_clock::now() + idle;
    for (;;) {
        {
            std::lock_guard const lock{m_mutex};
            if (m_overflowed) {
                m_overflowed = false;
                m_pending.clear();
                co_return std::string{"event: reset\ndata: {}\n\n"};
            }
            if (!m_pending.empty()) {
                std::string text;
                for (auto const& frame : m_pending) {
                    text += frame;
                }
                m_pending.clear();
                co_return text;
            }
            if (m_ended) {
                co_return std::nullopt;
            }
            if (std::chrono::steady_clock::now() >= until) {
                co_return std::string{};
            }
        }
        // Nothing can be pushed between the check above and this wait without a wake posted to
        // this loop, which runs after the wait has begun and cancels it.
        m_timer.expires_at(until);
        auto [ec] = co_await m_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        std::ignore = ec;
    }
}

} // namespace kachel::http
