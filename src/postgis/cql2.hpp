#pragma once

// CQL2 Text (OGC 21-065), the subset Martin accepts for `tables.<id>.filter`: comparisons,
// AND/OR/NOT, parentheses, IS [NOT] NULL, [NOT] LIKE, [NOT] IN, [NOT] BETWEEN, numbers, strings,
// booleans, DATE()/TIMESTAMP(), property names (bare or double-quoted) and the spatial predicates
// S_INTERSECTS, S_WITHIN, S_CONTAINS, S_DISJOINT, S_EQUALS, S_TOUCHES, S_OVERLAPS, S_CROSSES over
// WKT or BBOX literals in EPSG:4326. Parsing only builds a tree; postgis/row_filter.hpp turns it
// into SQL whose literals are all bound parameters.

#include "core/error.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::postgis::cql2 {

/// A filter that is not CQL2 Text as kachel reads it, or does not fit its table. `position` is the
/// 0-based offset of the offending part of the filter text; what() says what was expected there.
class filter_error : public config_error {
  public:
    filter_error(std::string const& message, std::size_t position)
        : config_error(message), m_position(position) {}
    [[nodiscard]] std::size_t position() const noexcept { return m_position; }

  private:
    std::size_t m_position;
};

enum class node_kind {
    all_of,    ///< AND of the arguments
    any_of,    ///< OR of the arguments
    negation,  ///< NOT of the one argument
    compare,   ///< `op` is =, <>, <, >, <= or >=; two scalar arguments
    like,      ///< scalar LIKE pattern; `negated` for NOT LIKE
    in_list,   ///< first argument IN the others; `negated` for NOT IN
    between,   ///< three scalars; `negated` for NOT BETWEEN
    is_null,   ///< one scalar; `negated` for IS NOT NULL
    spatial,   ///< `op` is the predicate (S_INTERSECTS...); two geometry arguments
    property,  ///< `text` is the property (column) name
    number,    ///< `text` is the number as written (a decimal or exponent form)
    string,    ///< `text` is the string's value, quotes undone
    boolean,   ///< `text` is "true" or "false"
    date,      ///< `text` is YYYY-MM-DD
    timestamp, ///< `text` is an RFC 3339 date-time
    geometry,  ///< `text` is well-known text, rewritten from the parsed numbers
    bbox,      ///< `args` are 4 (or 6, with heights) numbers: west, south[, min], east, north[, max]
};

struct node {
    node_kind kind;
    std::size_t position = 0; ///< where it starts in the filter text
    std::string op;
    std::string text;
    bool negated = false;
    std::vector<std::shared_ptr<node const>> args;
};

using node_ptr = std::shared_ptr<node const>;

/// Parses a CQL2 Text filter. \throws filter_error naming the position and what was expected.
[[nodiscard]] node_ptr parse(std::string_view text);

/// `text` with a caret under `position`, for error messages (two lines).
[[nodiscard]] std::string point_at(std::string_view text, std::size_t position);

} // namespace kachel::postgis::cql2
