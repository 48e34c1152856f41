#include "http/conditional.hpp"

#include "core/text.hpp"
#include "tiles/tile_format.hpp"

namespace kachel::http {

namespace bhttp = boost::beast::http;

bool matches_if_none_match(std::optional<std::string_view> header_value, std::string_view quoted_etag) {
    if (!header_value) {
        return false;
    }
    std::string_view rest = *header_value;
    while (!rest.empty()) {
        auto const comma = rest.find(',');
        auto const item = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (item == "*" || item == quoted_etag) {
            return true;
        }
    }
    return false;
}

response content_response(request const& req, std::string body, std::string_view content_type,
                          std::string const& etag, bool compressible, encoding preferred) {
    auto const quoted = "\"" + etag + "\"";
    if (matches_if_none_match(header(req, bhttp::field::if_none_match), quoted)) {
        auto res = make_response(req, bhttp::status::not_modified, {}, {});
        res.set(bhttp::field::etag, quoted);
        if (compressible) {
            add_vary(res, "Accept-Encoding");
        }
        return res;
    }
    auto const chosen = negotiate_encoding(header(req, bhttp::field::accept_encoding), encoding::identity,
                                           compressible, preferred);
    if (!chosen) {
        return text_response(req, bhttp::status::not_acceptable, "No supported encoding found");
    }
    if (*chosen != encoding::identity) {
        body = compress(body, *chosen);
    }
    auto res = make_response(req, bhttp::status::ok, std::move(body), content_type);
    res.set(bhttp::field::etag, quoted);
    if (*chosen != encoding::identity) {
        res.set(bhttp::field::content_encoding, encoding_token(*chosen));
    }
    if (compressible) {
        add_vary(res, "Accept-Encoding");
    }
    return res;
}

bool is_compressible(std::string_view content_type) noexcept {
    return content_type == tiles::mvt_type || content_type.starts_with("application/json");
}

response shared_tile_response(request const& req, std::shared_ptr<tiles::tile_bytes const> bytes,
                              std::string_view content_type, encoding used, bool compressible) {
    if (bytes->empty()) {
        return make_response(req, bhttp::status::no_content, {}, {});
    }
    std::array<char, 128> buffer{};
    std::string fallback;
    auto const quoted = join_into(buffer, fallback, {"\"", bytes->etag, "\""});
    bool const not_modified = matches_if_none_match(header(req, bhttp::field::if_none_match), quoted);
    auto res = make_response(req, not_modified ? bhttp::status::not_modified : bhttp::status::ok, {},
                             not_modified ? std::string_view{} : content_type);
    res.set(bhttp::field::etag, quoted);
    if (!not_modified) {
        if (used != encoding::identity) {
            res.set(bhttp::field::content_encoding, encoding_token(used));
        }
        res.body().share(std::move(bytes));
        res.prepare_payload();
    }
    if (compressible) {
        add_vary(res, "Accept-Encoding");
    }
    return res;
}

} // namespace kachel::http
