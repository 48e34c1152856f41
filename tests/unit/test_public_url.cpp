// Reconstruction of the URL a client used, behind proxies (martin-compat 1.2, decision D10).

#include "http/public_url.hpp"

#include <gtest/gtest.h>

using namespace kachel;
namespace bhttp = boost::beast::http;

namespace {

http::request make_request(std::initializer_list<std::pair<std::string, std::string>> headers) {
    http::request req{bhttp::verb::get, "/points", 11};
    for (auto const& [name, value] : headers) {
        req.set(name, value);
    }
    return req;
}

} // namespace

TEST(public_url, forwarded_parameters_follow_rfc_7239) {
    EXPECT_EQ(http::forwarded_param("for=1.2.3.4;proto=https;host=maps.example", "proto"), "https");
    EXPECT_EQ(http::forwarded_param("for=1.2.3.4; Host=\"maps.example:8443\"", "host"), "maps.example:8443");
    // Only the first element counts: the proxy nearest the client.
    EXPECT_EQ(http::forwarded_param("proto=https;host=a.example, proto=http;host=b.example", "host"),
              "a.example");
    EXPECT_FALSE(http::forwarded_param("for=1.2.3.4", "host"));
    EXPECT_FALSE(http::forwarded_param("", "proto"));
}

TEST(public_url, authority_prefers_forwarded_then_x_forwarded_then_host) {
    auto const plain = http::request_authority(make_request({{"Host", "localhost:3000"}}));
    EXPECT_EQ(plain.scheme, "http");
    EXPECT_EQ(plain.host, "localhost:3000");

    auto const x = http::request_authority(make_request(
        {{"Host", "internal:3000"}, {"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "maps.example"}}));
    EXPECT_EQ(x.scheme, "https");
    EXPECT_EQ(x.host, "maps.example");

    auto const both = http::request_authority(make_request({{"Host", "internal:3000"},
                                                            {"Forwarded", "proto=https;host=tiles.example"},
                                                            {"X-Forwarded-Proto", "http"},
                                                            {"X-Forwarded-Host", "other.example"}}));
    EXPECT_EQ(both.scheme, "https");
    EXPECT_EQ(both.host, "tiles.example");

    // Forwarded without a host: the host comes from X-Forwarded-Host.
    auto const mixed = http::request_authority(make_request(
        {{"Host", "internal"}, {"Forwarded", "proto=https"}, {"X-Forwarded-Host", "m.example"}}));
    EXPECT_EQ(mixed.scheme, "https");
    EXPECT_EQ(mixed.host, "m.example");
}

TEST(public_url, url_path_drops_scheme_host_query_and_fragment) {
    EXPECT_EQ(http::url_path("http://h/a/b?q=1"), "/a/b");
    EXPECT_EQ(http::url_path("https://h"), "/");
    EXPECT_EQ(http::url_path("/a/b#frag"), "/a/b");
    EXPECT_EQ(http::url_path("/a"), "/a");
}

TEST(public_url, tilejson_path_in_order_of_precedence) {
    http::http_options options;
    auto const req = make_request(
        {{"X-Rewrite-URL", "https://proxy/tiles/points/?x=1"}, {"X-Forwarded-Prefix", "/prefixed"}});
    // The request's own path when nothing says otherwise.
    EXPECT_EQ(http::tilejson_path(make_request({}), options, "/points"), "/points");
    // X-Forwarded-Prefix in front of the path.
    EXPECT_EQ(http::tilejson_path(make_request({{"X-Forwarded-Prefix", "/prefixed/"}}), options, "/points"),
              "/prefixed/points");
    // X-Rewrite-URL's path beats X-Forwarded-Prefix (trailing slashes dropped).
    EXPECT_EQ(http::tilejson_path(req, options, "/points"), "/tiles/points");
    // route_prefix beats the headers; base_path beats route_prefix.
    options.route_prefix = "/served";
    EXPECT_EQ(http::tilejson_path(req, options, "/points"), "/served/points");
    options.base_path = "/public";
    EXPECT_EQ(http::tilejson_path(req, options, "/points"), "/public/points");
    // A relative X-Rewrite-URL is ignored.
    http::http_options none;
    EXPECT_EQ(http::tilejson_path(make_request({{"X-Rewrite-URL", "relative/path"}}), none, "/points"),
              "/points");
}
