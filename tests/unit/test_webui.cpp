#include "http/router.hpp"
#include "http/webui.hpp"

#include <gtest/gtest.h>

using namespace kachel::http;
using boost::asio::ip::make_address;

TEST(webui, modes_parse_by_martin_names) {
    EXPECT_EQ(parse_webui_mode("disable"), webui_mode::disable);
    EXPECT_EQ(parse_webui_mode("enable-for-all"), webui_mode::enable_for_all);
    EXPECT_EQ(parse_webui_mode("loopback-only"), webui_mode::loopback_only);
    EXPECT_FALSE(parse_webui_mode("yes"));
}

TEST(webui, default_mode_serves_only_clients_on_this_machine) {
    for (char const* local : {"127.0.0.1", "127.5.6.7", "::1", "::ffff:127.0.0.1"}) {
        EXPECT_TRUE(webui_enabled_for(webui_mode::loopback_only, make_address(local))) << local;
    }
    for (char const* remote : {"10.1.2.3", "192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1"}) {
        EXPECT_FALSE(webui_enabled_for(webui_mode::loopback_only, make_address(remote))) << remote;
        EXPECT_TRUE(webui_enabled_for(webui_mode::enable_for_all, make_address(remote))) << remote;
    }
    EXPECT_FALSE(webui_enabled_for(webui_mode::disable, make_address("127.0.0.1")));
}

TEST(webui, assets_are_embedded_with_their_types) {
    auto const* page = find_webui_asset("index.html");
    ASSERT_NE(page, nullptr);
    EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
    EXPECT_NE(page->data.find("\"_/ui/app.js\""), std::string_view::npos);
    auto const* maplibre = find_webui_asset("maplibre-gl.mjs");
    ASSERT_NE(maplibre, nullptr);
    EXPECT_GT(maplibre->data.size(), 100000U);
    EXPECT_NE(find_webui_asset("maplibre-gl-worker.mjs"), nullptr);
    EXPECT_EQ(find_webui_asset("app.css")->content_type, "text/css; charset=utf-8");
    EXPECT_EQ(find_webui_asset("nope.js"), nullptr);
}

TEST(webui, asset_route) {
    auto const r = parse_route("/_/ui/app.js");
    ASSERT_EQ(r.type, route::kind::ui_asset);
    EXPECT_EQ(r.asset, "app.js");
    EXPECT_EQ(parse_route("/_/ui/").type, route::kind::not_found);
}
