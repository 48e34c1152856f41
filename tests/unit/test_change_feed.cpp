// The change feed behind /_/changes (http/change_feed): what its events say, and how a
// subscriber waits, falls behind and ends. The stream over a real server is in e2e/test_live.

#include "http/change_feed.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <thread>

using namespace kachel;
using namespace std::chrono_literals;

namespace {

/// Runs `sub`'s next wait to its end on `ioc`.
std::optional<std::string> next(boost::asio::io_context& ioc, http::change_feed::subscriber& sub,
                                std::chrono::milliseconds idle = 2s) {
    std::optional<std::string> out;
    boost::asio::co_spawn(ioc, sub.async_next(idle),
                          [&](std::exception_ptr const& e, std::optional<std::string> r) {
                              if (e) {
                                  std::rethrow_exception(e);
                              }
                              out = std::move(r);
                          });
    ioc.restart();
    ioc.run();
    return out;
}

TEST(change_feed, an_event_names_the_sources_the_boxes_the_margin_and_the_zooms_given) {
    http::change_event const change{{"a", "b"}, {{1, 2, 3, 4}}, 0.25, 3, {}};
    EXPECT_EQ(http::to_json(change),
              R"({"boxes":[[1.0,2.0,3.0,4.0]],"margin":0.25,"minzoom":3,"sources":["a","b"]})");
    EXPECT_EQ(http::to_json(http::change_event{{"a"}, {}, 0, {}, 7}),
              R"({"boxes":[],"margin":0.0,"maxzoom":7,"sources":["a"]})");
}

TEST(change_feed, a_subscriber_gets_the_events_in_order_then_waits_then_ends_with_the_feed) {
    boost::asio::io_context ioc;
    http::change_feed feed;
    auto sub = feed.subscribe(ioc.get_executor());
    EXPECT_EQ(feed.subscribers(), 1U);
    feed.publish(http::change_event{{"a"}, {}, 0, {}, {}});
    feed.publish("catalog", "{}");
    EXPECT_EQ(next(ioc, *sub), "event: change\ndata: {\"boxes\":[],\"margin\":0.0,\"sources\":[\"a\"]}\n\n"
                               "event: catalog\ndata: {}\n\n");
    // Nothing within the idle time: an empty text (the server sends a keepalive comment).
    auto const began = std::chrono::steady_clock::now();
    EXPECT_EQ(next(ioc, *sub, 50ms), "");
    EXPECT_GE(std::chrono::steady_clock::now() - began, 50ms);
    // Published from another thread while it waits: it wakes at once.
    std::thread publisher{[&] {
        std::this_thread::sleep_for(50ms);
        feed.publish("catalog", R"({"n":1})");
    }};
    auto const woke = next(ioc, *sub, 10s);
    publisher.join();
    EXPECT_EQ(woke, "event: catalog\ndata: {\"n\":1}\n\n");
    feed.close();
    EXPECT_EQ(next(ioc, *sub), std::nullopt);
    auto late = feed.subscribe(ioc.get_executor());
    EXPECT_EQ(next(ioc, *late), std::nullopt);
    sub.reset();
    late.reset();
    EXPECT_EQ(feed.subscribers(), 0U);
}

TEST(change_feed, a_subscriber_too_far_behind_gets_one_reset_for_what_it_missed) {
    boost::asio::io_context ioc;
    http::change_feed feed;
    auto sub = feed.subscribe(ioc.get_executor());
    for (std::size_t i = 0; i < http::change_feed::max_pending + 10; ++i) {
        feed.publish("catalog", "{}");
    }
    EXPECT_EQ(next(ioc, *sub), "event: reset\ndata: {}\n\n");
    feed.publish("catalog", "{}");
    EXPECT_EQ(next(ioc, *sub), "event: catalog\ndata: {}\n\n");
}

} // namespace
