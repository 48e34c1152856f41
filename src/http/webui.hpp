#pragma once

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <span>
#include <string_view>

namespace kachel::http {

/// Who gets the web UI at `/` (Martin's `-u/--webui` and `web_ui`, plus kachel's default).
enum class webui_mode {
    disable,        ///< `/` answers a plain-text banner
    loopback_only,  ///< the UI for clients on 127.0.0.0/8 or ::1, the banner for others (default)
    enable_for_all, ///< the UI for everybody
};

/// True for 127.0.0.0/8, ::1 and their IPv4-mapped forms.
[[nodiscard]] bool is_loopback(boost::asio::ip::address const& remote) noexcept;

/// "disable", "loopback-only", "enable-for-all"; nullopt for anything else.
[[nodiscard]] std::optional<webui_mode> parse_webui_mode(std::string_view text) noexcept;

/// The text parse_webui_mode reads: "disable", "loopback-only", "enable-for-all".
[[nodiscard]] std::string_view webui_mode_name(webui_mode mode) noexcept;

/// True when `mode` lets a client at `remote` see the UI.
[[nodiscard]] bool webui_enabled_for(webui_mode mode, boost::asio::ip::address const& remote) noexcept;

/// A file of the web UI, embedded in the binary at build time. Views are valid for the whole run.
struct webui_asset {
    std::string_view name; ///< e.g. "index.html", "maplibre-gl.mjs"
    std::string_view content_type;
    std::string_view data;
};

/// The asset called `name`, or nullptr.
[[nodiscard]] webui_asset const* find_webui_asset(std::string_view name) noexcept;

namespace detail {
/// Defined in the generated webui_assets.cpp.
std::span<webui_asset const> embedded_webui_assets() noexcept;
} // namespace detail

} // namespace kachel::http
