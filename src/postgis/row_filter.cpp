#include "postgis/row_filter.hpp"

#include "core/text.hpp"
#include "postgis/sql.hpp"

#include <fmt/format.h>

#include <optional>
#include <set>

namespace kachel::postgis {

namespace {

using cql2::filter_error;
using cql2::node;
using cql2::node_kind;

bool is_text(std::string_view type) noexcept {
    return type == "text" || type == "varchar" || type == "bpchar" || type == "name" || type == "citext";
}

std::string_view spatial_function(std::string_view predicate) noexcept {
    if (predicate == "S_INTERSECTS") {
        return "ST_Intersects";
    }
    if (predicate == "S_WITHIN") {
        return "ST_Within";
    }
    if (predicate == "S_CONTAINS") {
        return "ST_Contains";
    }
    if (predicate == "S_DISJOINT") {
        return "ST_Disjoint";
    }
    if (predicate == "S_EQUALS") {
        return "ST_Equals";
    }
    if (predicate == "S_TOUCHES") {
        return "ST_Touches";
    }
    if (predicate == "S_OVERLAPS") {
        return "ST_Overlaps";
    }
    return "ST_Crosses";
}

class compiler {
  public:
    compiler(table_info const& table, int srid, int first_param)
        : m_table(table), m_srid(srid), m_next(first_param) {}

    row_filter run(node const& filter) {
        auto sql = condition(filter);
        return {std::move(sql), std::move(m_params)};
    }

  private:
    table_info const& m_table;
    int m_srid;
    int m_next;
    std::vector<std::string> m_params;

    /// A bound parameter holding `value`, cast to `type` when given (else PostgreSQL gives it the
    /// type of the column it is compared with).
    std::string bind(std::string value, std::string_view type = {}) {
        m_params.push_back(std::move(value));
        auto text = fmt::format("${}", m_next++);
        if (!type.empty()) {
            text += "::";
            text += type;
        }
        return text;
    }

    /// The column a property names: exactly, else the one that matches ignoring case.
    [[nodiscard]] std::pair<std::string, std::string> column(node const& property) const {
        auto const& name = property.text;
        if (auto const it = m_table.properties.find(name); it != m_table.properties.end()) {
            return *it;
        }
        std::optional<std::pair<std::string, std::string>> folded;
        for (auto const& entry : m_table.properties) {
            if (iequals(entry.first, name)) {
                if (folded) {
                    throw filter_error{
                        fmt_error("property '{}' matches several columns of {}.{} that differ only "
                                  "in case: write the exact name in double quotes",
                                  name, m_table.schema, m_table.table),
                        property.position};
                }
                folded = entry;
            }
        }
        if (folded) {
            return *folded;
        }
        if (iequals(name, m_table.geometry_column)) {
            throw filter_error{fmt_error("'{}' is the geometry column: compare it with a spatial predicate "
                                         "such as S_INTERSECTS({}, BBOX(west, south, east, north))",
                                         name, name),
                               property.position};
        }
        std::set<std::string> names;
        for (auto const& entry : m_table.properties) {
            names.insert(entry.first);
        }
        throw filter_error{
            fmt_error("'{}' is not a column of {}.{}; its columns are: {}", name, m_table.schema,
                      m_table.table,
                      names.empty() ? std::string{"(none)"} : fmt::format("{}", fmt::join(names, ", "))),
            property.position};
    }

    std::string condition(node const& n) {
        switch (n.kind) {
        case node_kind::all_of:
        case node_kind::any_of: {
            std::string out = "(";
            for (std::size_t i = 0; i < n.args.size(); ++i) {
                if (i > 0) {
                    out += n.kind == node_kind::all_of ? " AND " : " OR ";
                }
                out += condition(*n.args[i]);
            }
            return out + ")";
        }
        case node_kind::negation:
            return fmt::format("(NOT {})", condition(*n.args[0]));
        case node_kind::compare: {
            auto const type = type_of(*n.args[0]).empty() ? type_of(*n.args[1]) : type_of(*n.args[0]);
            // Parameters are numbered in the order they are bound: bind left to right.
            auto const left = scalar(*n.args[0], type);
            auto const right = scalar(*n.args[1], type);
            return fmt::format("({} {} {})", left, n.op, right);
        }
        case node_kind::like: {
            auto const& subject = *n.args[0];
            std::string left = scalar(subject, "text");
            if (subject.kind == node_kind::property && !is_text(type_of(subject))) {
                left += "::text";
            }
            auto const pattern = scalar(*n.args[1], "text");
            return fmt::format("({} {}LIKE {})", left, n.negated ? "NOT " : "", pattern);
        }
        case node_kind::in_list: {
            auto type = type_of(*n.args[0]);
            std::string out = fmt::format("({} {}IN (", scalar(*n.args[0], type), n.negated ? "NOT " : "");
            for (std::size_t i = 1; i < n.args.size(); ++i) {
                out += i > 1 ? ", " : "";
                out += scalar(*n.args[i], type);
            }
            return out + "))";
        }
        case node_kind::between: {
            auto type = type_of(*n.args[0]);
            auto const subject = scalar(*n.args[0], type);
            auto const low = scalar(*n.args[1], type);
            auto const high = scalar(*n.args[2], type);
            return fmt::format("({} {}BETWEEN {} AND {})", subject, n.negated ? "NOT " : "", low, high);
        }
        case node_kind::is_null:
            return fmt::format("({} IS {}NULL)", scalar(*n.args[0], type_of(*n.args[0])),
                               n.negated ? "NOT " : "");
        case node_kind::spatial:
            return spatial(n);
        case node_kind::property: {
            auto const [name, type] = column(n);
            if (type != "bool") {
                throw filter_error{fmt_error("'{}' is of type {}, not boolean: compare it with a value "
                                             "(for example {} = ...)",
                                             n.text, type, n.text),
                                   n.position};
            }
            return fmt::format("({} IS TRUE)", quote_ident(name));
        }
        case node_kind::boolean:
            return bind(n.text, "boolean");
        default:
            throw filter_error{"expected a condition here, found a value", n.position};
        }
    }

    /// The column type of a property node; empty for literals.
    [[nodiscard]] std::string type_of(node const& n) const {
        return n.kind == node_kind::property ? column(n).second : std::string{};
    }

    /// A value compared with something of type `context` (a column's type, or empty).
    std::string scalar(node const& n, std::string_view context) {
        switch (n.kind) {
        case node_kind::property:
            return quote_ident(column(n).first);
        case node_kind::number: {
            bool const integral = n.text.find_first_of(".eE") == std::string::npos;
            if (context.empty() || (is_integer_type(context) && !integral) || is_text(context)) {
                // Compared as numbers: 2.5 with an integer column is not cut to 2, and a number
                // with a text column stays a number (PostgreSQL then refuses the comparison).
                return bind(n.text, "numeric");
            }
            return bind(n.text);
        }
        case node_kind::string:
            return context.empty() ? bind(n.text, "text") : bind(n.text);
        case node_kind::boolean:
            return context.empty() ? bind(n.text, "boolean") : bind(n.text);
        case node_kind::date:
            return bind(n.text, "date");
        case node_kind::timestamp:
            return bind(n.text, "timestamptz");
        default:
            throw filter_error{"expected a property name or a value here", n.position};
        }
    }

    /// The table's geometry column as the tile query draws it (each value in its own SRID when
    /// the column declares none).
    [[nodiscard]] std::string geometry_column() const {
        if (srid_per_value(m_table, m_srid)) {
            return own_srid_geometry(m_table, m_srid);
        }
        return quote_ident(m_table.geometry_column);
    }

    /// A literal geometry (EPSG:4326) in the column's SRID or as geography.
    std::string literal_geometry(node const& n) {
        std::string value;
        if (n.kind == node_kind::geometry) {
            value = fmt::format("ST_GeomFromText({}, 4326)", bind(n.text, "text"));
        } else {
            // BBOX(w, s, e, n) or BBOX(w, s, min, e, n, max): heights are ignored.
            bool const six = n.args.size() == 6;
            auto const& a = n.args;
            auto const west = bind(a[0]->text, "float8");
            auto const south = bind(a[1]->text, "float8");
            auto const east = bind(a[six ? 3 : 2]->text, "float8");
            auto const north = bind(a[six ? 4 : 3]->text, "float8");
            value = fmt::format("ST_MakeEnvelope({}, {}, {}, {}, 4326)", west, south, east, north);
        }
        if (m_table.is_geography) {
            return value + "::geography";
        }
        if (srid_per_value(m_table, m_srid)) {
            // Into each value's own SRID: the values of such a column may carry several.
            return fmt::format("ST_Transform({}, ST_SRID({}))", value, geometry_column());
        }
        if (m_srid != 4326) {
            return fmt::format("ST_Transform({}, {})", value, m_srid);
        }
        return value;
    }

    std::string geometry_argument(node const& n) {
        if (n.kind == node_kind::property) {
            if (n.text != m_table.geometry_column && !iequals(n.text, m_table.geometry_column)) {
                if (m_table.properties.contains(n.text)) {
                    throw filter_error{
                        fmt_error("'{}' is not the source's geometry column: spatial predicates "
                                  "apply to {}",
                                  n.text, m_table.geometry_column),
                        n.position};
                }
                throw filter_error{fmt_error("'{}' is not the geometry column of {}.{}: write {}", n.text,
                                             m_table.schema, m_table.table, m_table.geometry_column),
                                   n.position};
            }
            return geometry_column();
        }
        return literal_geometry(n);
    }

    std::string spatial(node const& n) {
        auto const function = spatial_function(n.op);
        auto first = geometry_argument(*n.args[0]);
        auto second = geometry_argument(*n.args[1]); // after the first: parameters in order
        // Geography has only ST_Intersects (index-assisted); the others go through geometry.
        if (m_table.is_geography && function != "ST_Intersects") {
            first = fmt::format("{}::geometry", first);
            second = fmt::format("{}::geometry", second);
        }
        return fmt::format("{}({}, {})", function, first, second);
    }
};

} // namespace

row_filter compile_filter(cql2::node const& filter, table_info const& table, int srid, int first_param) {
    return compiler{table, srid, first_param}.run(filter);
}

} // namespace kachel::postgis
