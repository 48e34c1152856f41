#include "pg/hosts.hpp"

#include "core/error.hpp"

#include <fmt/format.h>

#include <charconv>

namespace kachel::pg {

std::vector<std::string> comma_list(std::string const& text) {
    std::vector<std::string> out;
    for (std::size_t start = 0;;) {
        auto const comma = text.find(',', start);
        out.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
        if (comma == std::string::npos) {
            return out;
        }
        start = comma + 1;
    }
}

read_target read_target_of(connect_params const& params) {
    auto const value = params.keyword("target_session_attrs").value_or("any");
    if (value == "any" || value == "prefer-standby") {
        return read_target::spread;
    }
    if (value == "primary" || value == "read-write") {
        return read_target::primary_only;
    }
    if (value == "standby" || value == "read-only") {
        return read_target::standbys_only;
    }
    throw config_error{fmt_error("target_session_attrs \"{}\" in the connection string ({}) is not one of "
                                 "any, read-write, read-only, primary, standby, prefer-standby",
                                 value, params.origin)};
}

std::vector<connect_params> split_hosts(connect_params const& params) {
    auto const hosts = comma_list(params.keyword("host").value_or(""));
    auto const addresses = comma_list(params.keyword("hostaddr").value_or(""));
    auto const ports = comma_list(params.keyword("port").value_or(""));
    auto const count = std::max(hosts.size(), addresses.size());
    if (count <= 1) {
        return {params};
    }
    auto const fits = [count](std::vector<std::string> const& list) {
        return list.size() == count || list.size() == 1;
    };
    if (!fits(hosts) || !fits(addresses) || !fits(ports)) {
        throw config_error{fmt_error("The connection string ({}) names {} host(s), {} address(es) and {} "
                                     "port(s): give one port for all hosts, or one per host",
                                     params.origin, hosts.size(), addresses.size(), ports.size())};
    }
    auto const item = [](std::vector<std::string> const& list, std::size_t i) {
        return list.size() == 1 ? list.front() : list[i];
    };
    std::vector<connect_params> out;
    for (std::size_t i = 0; i < count; ++i) {
        connect_params one = params;
        one.set_keyword("host", item(hosts, i));
        one.set_keyword("hostaddr", item(addresses, i));
        one.set_keyword("port", item(ports, i));
        one.set_keyword("target_session_attrs", std::nullopt);
        one.host_roles.clear();
        if (params.host_roles.size() == count) {
            one.host_roles.push_back(params.host_roles[i]);
        }
        out.push_back(std::move(one));
    }
    return out;
}

connect_params primary_params(connect_params params) {
    if (split_hosts(params).size() <= 1) {
        return params;
    }
    auto const target = params.keyword("target_session_attrs").value_or("any");
    if (target != "primary" && target != "read-write") {
        params.set_keyword("target_session_attrs", "read-write");
    }
    return params;
}

connect_params any_host_params(connect_params params) {
    params.set_keyword("target_session_attrs", "any");
    return params;
}

std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept {
    auto const slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) {
        return std::nullopt;
    }
    std::uint32_t high = 0;
    std::uint32_t low = 0;
    auto const a = std::from_chars(text.data(), text.data() + slash, high, 16);
    auto const b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), low, 16);
    if (a.ec != std::errc{} || a.ptr != text.data() + slash || b.ec != std::errc{} ||
        b.ptr != text.data() + text.size()) {
        return std::nullopt;
    }
    return (std::uint64_t{high} << 32U) | low;
}

std::string lsn_text(std::uint64_t lsn) {
    return fmt::format("{:X}/{:X}", lsn >> 32U, lsn & 0xFFFFFFFFU);
}

} // namespace kachel::pg
