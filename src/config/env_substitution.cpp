#include "config/env_substitution.hpp"

#include "core/error.hpp"

#include <cstdlib>

namespace kachel::config {

namespace {

bool is_name_char(char c, bool first) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/// Expands one `${...}` body (without the braces).
std::string expand_braced(std::string_view body, env_lookup const& lookup) {
    std::size_t n = 0;
    while (n < body.size() && is_name_char(body[n], n == 0)) {
        ++n;
    }
    std::string const name{body.substr(0, n)};
    if (name.empty()) {
        throw config_error{fmt_error("invalid variable reference '${{{}}}' in the config file", body)};
    }
    auto const value = lookup(name);
    auto const rest = body.substr(n);
    if (rest.empty()) {
        if (!value) {
            throw config_error{
                fmt_error("missing property '{}': the config file uses ${{{}}} but the environment "
                          "variable is not set (give a default with ${{{}:-value}})",
                          name, name, name)};
        }
        return *value;
    }
    bool const colon = rest.front() == ':';
    auto const op_text = colon ? rest.substr(1) : rest;
    char const op = op_text.empty() ? '-' : op_text.front();
    std::string_view argument = op_text.empty() ? std::string_view{} : op_text.substr(1);
    if (colon && op != '-' && op != '+' && op != '?') {
        // Legacy ${VAR:default}.
        argument = op_text;
        return value && !value->empty() ? *value : substitute_env(argument, lookup);
    }
    bool const missing = colon ? (!value || value->empty()) : !value;
    switch (op) {
    case '-':
        return missing ? substitute_env(argument, lookup) : *value;
    case '+':
        return missing ? std::string{} : substitute_env(argument, lookup);
    case '?':
        if (missing) {
            throw config_error{
                fmt_error("{}: {}", name, argument.empty() ? std::string{"not set"} : std::string{argument})};
        }
        return *value;
    default:
        throw config_error{fmt_error("invalid variable reference '${{{}}}' in the config file", body)};
    }
}

} // namespace

std::optional<std::string> process_env(std::string const& name) {
    char const* v = std::getenv(name.c_str());
    return v == nullptr ? std::nullopt : std::optional<std::string>{v};
}

std::string substitute_env(std::string_view text, env_lookup const& lookup) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        char const c = text[i];
        if (c != '$' || i + 1 >= text.size()) {
            out += c;
            continue;
        }
        char const next = text[i + 1];
        if (next == '$') {
            out += '$';
            ++i;
        } else if (next == '{') {
            // Find the matching brace (defaults may contain nested ${...}).
            int depth = 0;
            std::size_t j = i + 1;
            for (; j < text.size(); ++j) {
                if (text[j] == '{') {
                    ++depth;
                } else if (text[j] == '}' && --depth == 0) {
                    break;
                }
            }
            if (j >= text.size()) {
                throw config_error{"unterminated '${' in a config file value"};
            }
            out += expand_braced(text.substr(i + 2, j - i - 2), lookup);
            i = j;
        } else if (is_name_char(next, true)) {
            std::size_t j = i + 1;
            while (j < text.size() && is_name_char(text[j], false)) {
                ++j;
            }
            out += expand_braced(text.substr(i + 1, j - i - 1), lookup);
            i = j - 1;
        } else {
            out += c;
        }
    }
    return out;
}

} // namespace kachel::config
