// The purge route's refusals (http/purge): who may purge, and what a bad request is told. What a
// purge drops from a real cache is in e2e/test_live.

#include "http/purge.hpp"

#include <boost/beast/http/field.hpp>
#include <gtest/gtest.h>

#include <utility>
#include <vector>

using namespace kachel;
namespace bhttp = boost::beast::http;

namespace {

struct purge_case {
    http::http_options options;
    tiles::catalog catalog;
    tiles::tile_cache cache{tiles::tile_cache_options{}};

    purge_case() { options.purge_endpoint = true; }

    http::response answer(std::string const& target, bhttp::verb method = bhttp::verb::delete_,
                          std::string const& remote = "127.0.0.1", std::string const& authorization = {}) {
        http::request req{method, target, 11};
        if (!authorization.empty()) {
            req.set(bhttp::field::authorization, authorization);
        }
        http::request_context ctx;
        ctx.remote = boost::asio::ip::make_address(remote);
        ctx.options = &options;
        ctx.cache = &cache;
        auto const route = http::parse_route(target);
        return http::answer_purge(req, route, catalog, ctx);
    }
};

std::string body_of(http::response const& res) {
    return std::string{res.body().own()};
}

TEST(purge, who_may_purge) {
    purge_case c;
    // Without a token: this machine only.
    EXPECT_EQ(c.answer("/cache/x", bhttp::verb::delete_, "127.0.0.1").result(), bhttp::status::not_found);
    EXPECT_EQ(c.answer("/cache/x", bhttp::verb::delete_, "::ffff:127.0.0.1").result(),
              bhttp::status::not_found);
    auto const far = c.answer("/cache/x", bhttp::verb::delete_, "10.1.2.3");
    EXPECT_EQ(far.result(), bhttp::status::forbidden);
    EXPECT_NE(body_of(far).find("KACHEL_PURGE_TOKEN"), std::string::npos);
    // With a token: anyone who sends it, nobody else, wherever they are.
    c.options.purge_token = "s3cret-token";
    EXPECT_EQ(c.answer("/cache/x", bhttp::verb::delete_, "10.1.2.3", "Bearer s3cret-token").result(),
              bhttp::status::not_found);
    for (auto const* wrong :
         {"", "Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token", "s3cret-token"}) {
        auto const res = c.answer("/cache/x", bhttp::verb::delete_, "127.0.0.1", wrong);
        EXPECT_EQ(res.result(), bhttp::status::unauthorized) << wrong;
        EXPECT_EQ(res[bhttp::field::www_authenticate], "Bearer realm=\"kachel\"");
        EXPECT_EQ(body_of(res).find("s3cret"), std::string::npos);
    }
    // Off: no such route; on, other methods are refused.
    EXPECT_EQ(c.answer("/cache/x", bhttp::verb::get, "127.0.0.1", "Bearer s3cret-token").result(),
              bhttp::status::method_not_allowed);
    c.options.purge_endpoint = false;
    EXPECT_EQ(c.answer("/cache/x", bhttp::verb::delete_, "127.0.0.1", "Bearer s3cret-token").result(),
              bhttp::status::not_found);
}

TEST(purge, bad_parameters_are_named) {
    purge_case c;
    for (auto const& [query, says] : std::vector<std::pair<std::string, std::string>>{
             {"bbox=1,2,3", "bbox"},
             {"bbox=3,2,1,4", "bbox"},
             {"minzoom=-1", "minzoom must be a zoom from 0 to 30"},
             {"maxzoom=31", "maxzoom must be a zoom from 0 to 30"},
             {"minzoom=x", "minzoom must be a zoom"},
             {"minzoom=5&maxzoom=4", "minzoom 5 is above maxzoom 4"}}) {
        auto const res = c.answer("/cache/x?" + query);
        EXPECT_EQ(res.result(), bhttp::status::bad_request) << query;
        EXPECT_NE(body_of(res).find(says), std::string::npos) << body_of(res);
    }
}

} // namespace
