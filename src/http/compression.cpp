#include "http/compression.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

namespace kachel::http {

namespace {

/// q-values of an Accept-Encoding header by coding name (lower case), `*` included.
struct accept_list {
    std::vector<std::pair<std::string, double>> entries;

    [[nodiscard]] std::optional<double> explicit_q(std::string_view name) const noexcept {
        for (auto const& [n, q] : entries) {
            if (iequals(n, name)) {
                return q;
            }
        }
        return std::nullopt;
    }
    /// Explicit value, else the `*` value.
    [[nodiscard]] std::optional<double> q(std::string_view name) const noexcept {
        if (auto v = explicit_q(name)) {
            return v;
        }
        return explicit_q("*");
    }
};

accept_list parse_accept_encoding(std::string_view header) {
    accept_list out;
    while (!header.empty()) {
        auto const comma = header.find(',');
        auto item = trim(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        double q = 1.0;
        auto const semi = item.find(';');
        auto const name = trim(item.substr(0, semi));
        if (semi != std::string_view::npos) {
            auto params = trim(item.substr(semi + 1));
            if (params.size() > 2 && (params[0] == 'q' || params[0] == 'Q') && params[1] == '=') {
                auto const value = params.substr(2);
                double parsed = 0;
                auto const [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
                q = ec == std::errc{} ? std::clamp(parsed, 0.0, 1.0) : 0.0;
            }
        }
        out.entries.emplace_back(std::string{name}, q);
    }
    return out;
}

} // namespace

std::optional<encoding> negotiate_encoding(std::optional<std::string_view> accept_encoding, encoding stored,
                                           bool compressible, encoding preferred) noexcept {
    if (!accept_encoding) {
        return encoding::identity;
    }
    accept_list list;
    try {
        list = parse_accept_encoding(*accept_encoding);
    } catch (...) {
        return encoding::identity;
    }
    if (stored != encoding::identity) {
        if (auto q = list.explicit_q(encoding_token(stored)); q && *q > 0) {
            return stored;
        }
    }
    if (!compressible) {
        return encoding::identity;
    }
    constexpr std::array<encoding, 3> order{encoding::brotli, encoding::zstd, encoding::gzip};
    auto const gz = list.q("gzip");
    auto const br = list.q("br");
    if (gz && br) {
        auto const zs = list.q("zstd").value_or(0.0);
        double const best = std::max({*gz, *br, zs});
        if (best <= 0) {
            return encoding::identity;
        }
        auto score = [&](encoding e) { return e == encoding::gzip ? *gz : e == encoding::brotli ? *br : zs; };
        if (score(preferred) == best) {
            return preferred;
        }
        for (auto e : order) {
            if (score(e) == best) {
                return e;
            }
        }
        return encoding::identity;
    }
    // Ordinary negotiation; identity is acceptable unless excluded.
    double best = 0;
    std::optional<encoding> chosen;
    auto consider = [&](encoding e, std::optional<double> q) {
        if (q && *q > 0 && (*q > best || (*q == best && chosen && e == preferred))) {
            best = *q;
            chosen = e;
        }
    };
    consider(encoding::gzip, gz);
    consider(encoding::brotli, br);
    consider(encoding::zstd, list.q("zstd"));
    std::optional<double> identity_q = list.explicit_q("identity");
    if (!identity_q) {
        auto const star = list.explicit_q("*");
        identity_q = star && *star == 0 ? 0.0 : 1.0;
    }
    if (*identity_q > best) {
        return encoding::identity;
    }
    if (chosen) {
        return chosen;
    }
    return *identity_q > 0 ? std::optional<encoding>{encoding::identity} : std::nullopt;
}

} // namespace kachel::http
