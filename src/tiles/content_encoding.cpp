#include "tiles/content_encoding.hpp"

namespace kachel::tiles {

std::string_view encoding_token(encoding e) noexcept {
    switch (e) {
    case encoding::gzip:
        return "gzip";
    case encoding::brotli:
        return "br";
    case encoding::zstd:
        return "zstd";
    case encoding::identity:
        break;
    }
    return {};
}

std::optional<encoding> parse_encoding(std::string_view name) noexcept {
    if (name == "gzip") {
        return encoding::gzip;
    }
    if (name == "br" || name == "brotli") {
        return encoding::brotli;
    }
    if (name == "zstd") {
        return encoding::zstd;
    }
    if (name == "identity") {
        return encoding::identity;
    }
    return std::nullopt;
}

} // namespace kachel::tiles
