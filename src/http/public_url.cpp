#include "http/public_url.hpp"

#include "core/text.hpp"
#include "http/router.hpp"

namespace kachel::http {

namespace bhttp = boost::beast::http;

std::optional<std::string> forwarded_param(std::string_view header_value, std::string_view name) {
    auto const element = header_value.substr(0, header_value.find(','));
    std::string_view rest = element;
    while (!rest.empty()) {
        auto const semi = rest.find(';');
        auto const pair = trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        auto const eq = pair.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        if (!iequals(trim(pair.substr(0, eq)), name)) {
            continue;
        }
        auto value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        return std::string{value};
    }
    return std::nullopt;
}

scheme_and_host request_authority(request const& req) {
    scheme_and_host out;
    std::optional<std::string> proto;
    std::optional<std::string> host;
    if (auto const fwd = header(req, bhttp::field::forwarded)) {
        proto = forwarded_param(*fwd, "proto");
        host = forwarded_param(*fwd, "host");
    }
    if (auto const it = req.find("X-Forwarded-Proto"); !proto && it != req.end() && !it->value().empty()) {
        proto = std::string{it->value()};
    }
    if (auto const it = req.find("X-Forwarded-Host"); !host && it != req.end() && !it->value().empty()) {
        host = std::string{it->value()};
    }
    if (!host) {
        if (auto const h = header(req, bhttp::field::host)) {
            host = std::string{*h};
        }
    }
    if (proto) {
        out.scheme = std::move(*proto);
    }
    out.host = host.value_or("");
    return out;
}

std::string_view url_path(std::string_view url) {
    if (auto const scheme = url.find("://"); scheme != std::string_view::npos) {
        auto const slash = url.find('/', scheme + 3);
        url = slash == std::string_view::npos ? std::string_view{"/"} : url.substr(slash);
    }
    return url.substr(0, url.find_first_of("?#"));
}

std::string tilejson_path(request const& req, http_options const& options, std::string_view path) {
    if (options.base_path) {
        return *options.base_path + std::string{path};
    }
    if (!options.route_prefix.empty()) {
        return options.route_prefix + std::string{path};
    }
    if (auto const it = req.find("X-Rewrite-URL"); it != req.end() && !it->value().empty()) {
        auto p = url_path(std::string_view{it->value().data(), it->value().size()});
        if (!p.empty() && p.front() == '/') {
            while (p.size() > 1 && p.back() == '/') {
                p.remove_suffix(1);
            }
            return std::string{p};
        }
    }
    if (auto const it = req.find("X-Forwarded-Prefix"); it != req.end() && !it->value().empty()) {
        if (auto prefix =
                normalize_prefix(url_path(std::string_view{it->value().data(), it->value().size()}))) {
            return *prefix + std::string{path};
        }
    }
    return std::string{path};
}

} // namespace kachel::http
