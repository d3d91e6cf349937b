// Inline SVG charts for report.html: self-contained text, no scripts, no network.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace moekit::recipes::svg {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y)
};

// Lines over a shared x axis, with a legend.
std::string line_chart(const std::string& title, const std::string& x_label, const std::vector<Series>& series);

// Histogram of `values` in `bins` equal-width bins.
std::string histogram(const std::string& title, const std::vector<double>& values, int bins);

// rows x cols fractions, shown as a percentage and as colour (darkest = largest cell).
std::string heatmap(const std::string& title, const std::vector<std::vector<double>>& cells,
                    const std::string& row_label, const std::string& col_label);

// Escapes text for HTML/SVG.
std::string escape(const std::string& text);

}  // namespace moekit::recipes::svg
