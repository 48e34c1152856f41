// libFuzzer target: any request target, with and without a route prefix, must give a route
// whose fields hold what the router promises. A broken promise aborts (a finding).

#include "http/router.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using kachel::http::route;

namespace {

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

void check_route(route const& r) {
    switch (r.type) {
    case route::kind::tile:
        check(kachel::is_valid(r.coord));
        [[fallthrough]];
    case route::kind::tilejson:
        check(!r.source_ids.empty() && r.source_ids.size() <= kachel::http::max_composite_sources);
        for (auto const& id : r.source_ids) {
            check(!id.empty() && id.find(',') == std::string::npos && id.find('\0') == std::string::npos);
        }
        break;
    case route::kind::redirect:
        check(!r.location.empty() && r.location.front() == '/');
        break;
    case route::kind::bad_request:
    case route::kind::not_found:
        check(!r.message.empty());
        break;
    default:
        break;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const input{reinterpret_cast<char const*>(data), size};
    check_route(kachel::http::parse_route(input));
    check_route(kachel::http::parse_route(input, "/tiles"));
    if (auto const prefix = kachel::http::normalize_prefix(input)) {
        check(prefix->empty() || (prefix->front() == '/' && prefix->back() != '/'));
        check(prefix->find("//") == std::string::npos);
        check_route(kachel::http::parse_route("/a/1/0/0", *prefix));
    }
    return 0;
}
