#include "http/webui.hpp"

namespace kachel::http {

std::optional<webui_mode> parse_webui_mode(std::string_view text) noexcept {
    if (text == "disable") {
        return webui_mode::disable;
    }
    if (text == "loopback-only") {
        return webui_mode::loopback_only;
    }
    if (text == "enable-for-all") {
        return webui_mode::enable_for_all;
    }
    return std::nullopt;
}

std::string_view webui_mode_name(webui_mode mode) noexcept {
    switch (mode) {
    case webui_mode::disable:
        return "disable";
    case webui_mode::enable_for_all:
        return "enable-for-all";
    case webui_mode::loopback_only:
        break;
    }
    return "loopback-only";
}

bool webui_enabled_for(webui_mode mode, boost::asio::ip::address const& remote) noexcept {
    switch (mode) {
    case webui_mode::disable:
        return false;
    case webui_mode::enable_for_all:
        return true;
    case webui_mode::loopback_only:
        break;
    }
    return is_loopback(remote);
}

bool is_loopback(boost::asio::ip::address const& remote) noexcept {
    if (remote.is_v6() && remote.to_v6().is_v4_mapped()) {
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, remote.to_v6()).is_loopback();
    }
    return remote.is_loopback();
}

webui_asset const* find_webui_asset(std::string_view name) noexcept {
    for (auto const& asset : detail::embedded_webui_assets()) {
        if (asset.name == name) {
            return &asset;
        }
    }
    return nullptr;
}

} // namespace kachel::http
