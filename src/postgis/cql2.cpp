#include "postgis/cql2.hpp"

#include "core/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

namespace kachel::postgis::cql2 {

namespace {

enum class token_kind { identifier, quoted_identifier, string, number, punct, end };

struct token {
    token_kind kind = token_kind::end;
    std::string text; ///< identifiers and punctuation as written; strings and quoted names unquoted
    std::size_t position = 0;
};

bool is_identifier_start(char c) noexcept {
    return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_';
}

bool is_identifier_part(char c) noexcept {
    return is_identifier_start(c) || std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '.' || c == ':';
}

bool is_digit(char c) noexcept {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

/// Splits the text into tokens; anything that is not CQL2 (`;`, `!`, a backslash...) stops here.
std::vector<token> tokenize(std::string_view text) {
    std::vector<token> out;
    std::size_t i = 0;
    auto const quoted = [&](char quote, token_kind kind, char const* what) {
        std::size_t const start = i;
        std::string value;
        ++i;
        for (;;) {
            if (i >= text.size()) {
                throw filter_error{fmt_error("unterminated {}: add the closing {}", what, quote), start};
            }
            if (text[i] == quote) {
                if (i + 1 < text.size() && text[i + 1] == quote) {
                    value += quote;
                    i += 2;
                    continue;
                }
                ++i;
                break;
            }
            value += text[i++];
        }
        out.push_back({kind, std::move(value), start});
    };
    while (i < text.size()) {
        char const c = text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ++i;
        } else if (is_identifier_start(c)) {
            std::size_t const start = i;
            while (i < text.size() && is_identifier_part(text[i])) {
                ++i;
            }
            out.push_back({token_kind::identifier, std::string{text.substr(start, i - start)}, start});
        } else if (c == '"') {
            quoted('"', token_kind::quoted_identifier, "property name");
        } else if (c == '\'') {
            quoted('\'', token_kind::string, "string");
        } else if (is_digit(c) || (c == '.' && i + 1 < text.size() && is_digit(text[i + 1]))) {
            std::size_t const start = i;
            while (i < text.size() && is_digit(text[i])) {
                ++i;
            }
            if (i < text.size() && text[i] == '.') {
                ++i;
                while (i < text.size() && is_digit(text[i])) {
                    ++i;
                }
            }
            if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
                std::size_t j = i + 1;
                if (j < text.size() && (text[j] == '+' || text[j] == '-')) {
                    ++j;
                }
                if (j >= text.size() || !is_digit(text[j])) {
                    throw filter_error{"malformed number: an exponent needs digits", start};
                }
                i = j;
                while (i < text.size() && is_digit(text[i])) {
                    ++i;
                }
            }
            if (i < text.size() && is_identifier_start(text[i])) {
                throw filter_error{"malformed number", start};
            }
            out.push_back({token_kind::number, std::string{text.substr(start, i - start)}, start});
        } else if ((c == '<' || c == '>') && i + 1 < text.size() &&
                   (text[i + 1] == '=' || (c == '<' && text[i + 1] == '>'))) {
            out.push_back({token_kind::punct, std::string{text.substr(i, 2)}, i});
            i += 2;
        } else if (c == '(' || c == ')' || c == ',' || c == '=' || c == '<' || c == '>' || c == '-' ||
                   c == '+') {
            out.push_back({token_kind::punct, std::string(1, c), i});
            ++i;
        } else {
            throw filter_error{fmt_error("unexpected character '{}': CQL2 Text has no such operator or "
                                         "punctuation (strings go in single quotes, names with other "
                                         "characters in double quotes)",
                                         c),
                               i};
        }
    }
    out.push_back({token_kind::end, {}, text.size()});
    return out;
}

constexpr std::array<std::string_view, 8> spatial_predicates{"S_INTERSECTS", "S_WITHIN", "S_CONTAINS",
                                                             "S_DISJOINT",   "S_EQUALS", "S_TOUCHES",
                                                             "S_OVERLAPS",   "S_CROSSES"};
constexpr std::array<std::string_view, 7> wkt_types{
    "POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"};
/// Words that cannot be a bare property name (quote them: "in").
constexpr std::array<std::string_view, 11> reserved{"AND", "OR",   "NOT",  "LIKE",  "IN",  "BETWEEN",
                                                    "IS",  "NULL", "TRUE", "FALSE", "BBOX"};

template <std::size_t N>
std::optional<std::string_view> keyword_in(std::array<std::string_view, N> const& words,
                                           std::string_view text) {
    for (auto const w : words) {
        if (iequals(w, text)) {
            return w;
        }
    }
    return std::nullopt;
}

constexpr int max_depth = 64;

class parser {
  public:
    explicit parser(std::string_view text) : m_tokens(tokenize(text)) {}

    node_ptr parse_all() {
        if (peek().kind == token_kind::end) {
            throw filter_error{"the filter is empty: remove the key, or write a condition such as "
                               "population > 1000",
                               0};
        }
        auto out = parse_or();
        if (peek().kind != token_kind::end) {
            throw filter_error{fmt_error("unexpected '{}' after a complete condition: join conditions with "
                                         "AND or OR",
                                         peek().text),
                               peek().position};
        }
        return out;
    }

  private:
    std::vector<token> m_tokens;
    std::size_t m_next = 0;
    int m_depth = 0;

    [[nodiscard]] token const& peek(std::size_t ahead = 0) const {
        return m_tokens[std::min(m_next + ahead, m_tokens.size() - 1)];
    }
    token const& take() { return m_tokens[std::min(m_next++, m_tokens.size() - 1)]; }

    [[nodiscard]] bool at_keyword(std::string_view word, std::size_t ahead = 0) const {
        return peek(ahead).kind == token_kind::identifier && iequals(peek(ahead).text, word);
    }
    [[nodiscard]] bool at_punct(std::string_view p, std::size_t ahead = 0) const {
        return peek(ahead).kind == token_kind::punct && peek(ahead).text == p;
    }

    [[noreturn]] void expected(std::string_view what) const {
        auto const& t = peek();
        throw filter_error{t.kind == token_kind::end
                               ? fmt_error("the filter ends where {} was expected", what)
                               : fmt_error("expected {}, found '{}'", what, t.text),
                           t.position};
    }

    void expect_punct(std::string_view p) {
        if (!at_punct(p)) {
            expected(fmt::format("'{}'", p));
        }
        take();
    }

    /// Guards the recursion against hostile nesting.
    struct depth_guard {
        explicit depth_guard(parser& p) : m_parser(p) {
            if (++m_parser.m_depth > max_depth) {
                throw filter_error{fmt_error("the filter nests deeper than {} levels", max_depth),
                                   m_parser.peek().position};
            }
        }
        depth_guard(depth_guard const&) = delete;
        depth_guard& operator=(depth_guard const&) = delete;
        ~depth_guard() { --m_parser.m_depth; }
        parser& m_parser;
    };

    static node_ptr make(node_kind kind, std::size_t position, std::string text = {},
                         std::vector<node_ptr> args = {}, std::string op = {}, bool negated = false) {
        return std::make_shared<node const>(
            node{kind, position, std::move(op), std::move(text), negated, std::move(args)});
    }

    node_ptr parse_or() {
        depth_guard const guard{*this};
        auto const position = peek().position;
        std::vector<node_ptr> parts{parse_and()};
        while (at_keyword("OR")) {
            take();
            parts.push_back(parse_and());
        }
        return parts.size() == 1 ? parts.front() : make(node_kind::any_of, position, {}, std::move(parts));
    }

    node_ptr parse_and() {
        auto const position = peek().position;
        std::vector<node_ptr> parts{parse_not()};
        while (at_keyword("AND")) {
            take();
            parts.push_back(parse_not());
        }
        return parts.size() == 1 ? parts.front() : make(node_kind::all_of, position, {}, std::move(parts));
    }

    node_ptr parse_not() {
        depth_guard const guard{*this};
        if (at_keyword("NOT")) {
            auto const position = take().position;
            return make(node_kind::negation, position, {}, {parse_not()});
        }
        return parse_predicate();
    }

    node_ptr parse_predicate() {
        if (at_punct("(")) {
            take();
            auto inner = parse_or();
            expect_punct(")");
            return inner;
        }
        if (peek().kind == token_kind::identifier && at_punct("(", 1)) {
            if (auto const name = keyword_in(spatial_predicates, peek().text)) {
                return parse_spatial(std::string{*name});
            }
        }
        auto const position = peek().position;
        auto left = parse_scalar();
        if (peek().kind == token_kind::punct && (at_punct("=") || at_punct("<>") || at_punct("<") ||
                                                 at_punct(">") || at_punct("<=") || at_punct(">="))) {
            auto op = take().text;
            return make(node_kind::compare, position, {}, {std::move(left), parse_scalar()}, std::move(op));
        }
        if (at_keyword("IS")) {
            take();
            bool const negated = at_keyword("NOT");
            if (negated) {
                take();
            }
            if (!at_keyword("NULL")) {
                expected("NULL");
            }
            take();
            return make(node_kind::is_null, position, {}, {std::move(left)}, {}, negated);
        }
        bool const negated = at_keyword("NOT");
        if (negated) {
            take();
        }
        if (at_keyword("LIKE")) {
            take();
            return make(node_kind::like, position, {}, {std::move(left), parse_scalar()}, {}, negated);
        }
        if (at_keyword("IN")) {
            take();
            expect_punct("(");
            std::vector<node_ptr> args{std::move(left), parse_scalar()};
            while (at_punct(",")) {
                take();
                args.push_back(parse_scalar());
            }
            expect_punct(")");
            return make(node_kind::in_list, position, {}, std::move(args), {}, negated);
        }
        if (at_keyword("BETWEEN")) {
            take();
            auto low = parse_scalar();
            if (!at_keyword("AND")) {
                expected("AND (BETWEEN low AND high)");
            }
            take();
            return make(node_kind::between, position, {}, {std::move(left), std::move(low), parse_scalar()},
                        {}, negated);
        }
        if (negated) {
            expected("LIKE, IN or BETWEEN after NOT");
        }
        if (left->kind == node_kind::property || left->kind == node_kind::boolean) {
            return left; // a boolean column or literal stands as a condition
        }
        expected("a comparison (=, <>, <, >, <=, >=), LIKE, IN, BETWEEN or IS NULL");
    }

    node_ptr parse_number() {
        auto const position = peek().position;
        std::string text;
        if (at_punct("-") || at_punct("+")) {
            if (take().text == "-") {
                text = "-";
            }
        }
        if (peek().kind != token_kind::number) {
            expected("a number");
        }
        text += take().text;
        return make(node_kind::number, position, std::move(text));
    }

    node_ptr parse_scalar() {
        auto const& t = peek();
        switch (t.kind) {
        case token_kind::number:
            return parse_number();
        case token_kind::string: {
            auto const& s = take();
            return make(node_kind::string, s.position, s.text);
        }
        case token_kind::quoted_identifier: {
            auto const& s = take();
            if (s.text.empty()) {
                throw filter_error{"an empty property name", s.position};
            }
            return make(node_kind::property, s.position, s.text);
        }
        case token_kind::punct:
            if (t.text == "-" || t.text == "+") {
                return parse_number();
            }
            expected("a property name or a value");
        case token_kind::end:
            expected("a property name or a value");
        case token_kind::identifier:
            break;
        }
        if (at_keyword("TRUE") || at_keyword("FALSE")) {
            auto const& s = take();
            return make(node_kind::boolean, s.position, iequals(s.text, "TRUE") ? "true" : "false");
        }
        if ((at_keyword("DATE") || at_keyword("TIMESTAMP")) && at_punct("(", 1)) {
            return parse_instant();
        }
        if (at_punct("(", 1)) {
            throw filter_error{fmt_error("function '{}' is not supported: a filter may call only DATE(), "
                                         "TIMESTAMP() and the spatial predicates S_INTERSECTS, S_WITHIN, "
                                         "S_CONTAINS, S_DISJOINT, S_EQUALS, S_TOUCHES, S_OVERLAPS, S_CROSSES",
                                         t.text),
                               t.position};
        }
        if (keyword_in(reserved, t.text)) {
            throw filter_error{fmt_error("expected a property name or a value, found the keyword '{}' (a "
                                         "property with that name goes in double quotes: \"{}\")",
                                         t.text, t.text),
                               t.position};
        }
        auto const& s = take();
        return make(node_kind::property, s.position, s.text);
    }

    node_ptr parse_instant() {
        auto const& name = take();
        bool const is_date = iequals(name.text, "DATE");
        expect_punct("(");
        if (peek().kind != token_kind::string) {
            expected(is_date ? "a quoted date such as '2024-05-31'"
                             : "a quoted timestamp such as '2024-05-31T12:00:00Z'");
        }
        auto const& value = take();
        auto const& v = value.text;
        auto const digits = [&](std::size_t from, std::size_t n) {
            return v.size() >= from + n &&
                   std::all_of(v.begin() + static_cast<std::ptrdiff_t>(from),
                               v.begin() + static_cast<std::ptrdiff_t>(from + n), is_digit);
        };
        bool const date_ok =
            digits(0, 4) && v.size() >= 10 && v[4] == '-' && digits(5, 2) && v[7] == '-' && digits(8, 2);
        bool ok = false;
        if (is_date) {
            ok = date_ok && v.size() == 10;
        } else {
            ok = date_ok && v.size() >= 20 && (v[10] == 'T' || v[10] == 't') && digits(11, 2) &&
                 v[13] == ':' && digits(14, 2) && v[16] == ':' && digits(17, 2) &&
                 std::all_of(v.begin() + 19, v.end(), [](char c) {
                     return is_digit(c) || c == '.' || c == 'Z' || c == 'z' || c == '+' || c == '-' ||
                            c == ':';
                 });
        }
        if (!ok) {
            throw filter_error{is_date ? fmt_error("'{}' is not a date: write DATE('YYYY-MM-DD')", v)
                                       : fmt_error("'{}' is not a timestamp: write "
                                                   "TIMESTAMP('YYYY-MM-DDTHH:MM:SSZ') (RFC 3339)",
                                                   v),
                               value.position};
        }
        expect_punct(")");
        return make(is_date ? node_kind::date : node_kind::timestamp, name.position, v);
    }

    node_ptr parse_spatial(std::string name) {
        auto const position = take().position;
        expect_punct("(");
        auto first = parse_geometry_argument();
        expect_punct(",");
        auto second = parse_geometry_argument();
        expect_punct(")");
        return make(node_kind::spatial, position, {}, {std::move(first), std::move(second)}, std::move(name));
    }

    node_ptr parse_geometry_argument() {
        auto const position = peek().position;
        if (at_keyword("BBOX") && at_punct("(", 1)) {
            take();
            take();
            std::vector<node_ptr> numbers{parse_number()};
            while (at_punct(",")) {
                take();
                numbers.push_back(parse_number());
            }
            expect_punct(")");
            if (numbers.size() != 4 && numbers.size() != 6) {
                throw filter_error{"BBOX takes 4 numbers (west, south, east, north) or 6 (with heights)",
                                   position};
            }
            return make(node_kind::bbox, position, {}, std::move(numbers));
        }
        if (peek().kind == token_kind::identifier && keyword_in(wkt_types, peek().text)) {
            std::string wkt;
            parse_wkt(wkt);
            return make(node_kind::geometry, position, std::move(wkt));
        }
        auto arg = parse_scalar();
        if (arg->kind != node_kind::property) {
            throw filter_error{"a spatial predicate compares the geometry column with a geometry: "
                               "POINT(...), POLYGON(...) and the other WKT types, or BBOX(w, s, e, n)",
                               position};
        }
        return arg;
    }

    /// One WKT geometry, rewritten into `out` from its tokens (so only numbers, keywords and
    /// punctuation reach it).
    void parse_wkt(std::string& out) {
        depth_guard const guard{*this};
        auto const type = keyword_in(wkt_types, peek().text);
        if (!type) {
            expected("a WKT geometry type (POINT, LINESTRING, POLYGON, MULTI..., GEOMETRYCOLLECTION)");
        }
        take();
        out += *type;
        if (at_keyword("Z") || at_keyword("M") || at_keyword("ZM")) {
            out += ' ';
            out += to_upper(take().text);
        }
        if (at_keyword("EMPTY")) {
            take();
            out += " EMPTY";
            return;
        }
        if (*type == "GEOMETRYCOLLECTION") {
            expect_punct("(");
            out += '(';
            parse_wkt(out);
            while (at_punct(",")) {
                take();
                out += ',';
                parse_wkt(out);
            }
            expect_punct(")");
            out += ')';
            return;
        }
        parse_wkt_list(out);
    }

    /// `( item, item... )` where an item is a coordinate (2 to 4 numbers) or a nested list.
    void parse_wkt_list(std::string& out) {
        depth_guard const guard{*this};
        expect_punct("(");
        out += '(';
        for (bool first = true;; first = false) {
            if (!first) {
                out += ',';
            }
            if (at_punct("(")) {
                parse_wkt_list(out);
            } else {
                for (int n = 0;
                     n < 4 && (peek().kind == token_kind::number || at_punct("-") || at_punct("+")); ++n) {
                    if (n > 0) {
                        out += ' ';
                    }
                    out += parse_number()->text;
                }
                if (out.back() == '(' || out.back() == ',') {
                    expected("a coordinate (x y)");
                }
            }
            if (!at_punct(",")) {
                break;
            }
            take();
        }
        expect_punct(")");
        out += ')';
    }

    static std::string to_upper(std::string text) {
        for (auto& c : text) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        return text;
    }
};

} // namespace

node_ptr parse(std::string_view text) {
    return parser{text}.parse_all();
}

std::string point_at(std::string_view text, std::size_t position) {
    std::string line;
    line.reserve(text.size());
    for (char const c : text) {
        line += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    }
    return fmt::format("  {}\n  {}^", line, std::string(std::min(position, text.size()), ' '));
}

} // namespace kachel::postgis::cql2
