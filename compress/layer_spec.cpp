#include "compress/layer_spec.h"

#include <algorithm>
#include <sstream>

#include "model/error.h"

namespace moekit::compress {

namespace {

int64_t parse_index(const std::string& text, const std::string& option) {
  size_t used = 0;
  int64_t v = -1;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || v < 0) fail("", option + ": \"" + text + "\" is not a layer index");
  return v;
}

}  // namespace

std::vector<int64_t> parse_layer_list(const std::string& text, int64_t num_layers) {
  std::vector<int64_t> layers;
  if (text.empty()) {
    for (int64_t i = 0; i < num_layers; ++i) layers.push_back(i);
    return layers;
  }
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    const int64_t v = parse_index(item, "--layers");
    if (v >= num_layers)
      fail("", "--layers: \"" + item + "\" is not a layer index in [0, " + std::to_string(num_layers) + ")");
    layers.push_back(v);
  }
  std::sort(layers.begin(), layers.end());
  if (std::adjacent_find(layers.begin(), layers.end()) != layers.end()) fail("", "--layers lists a layer twice");
  return layers;
}

std::vector<std::vector<int64_t>> parse_share_groups(const std::string& share_groups, int share_every,
                                                     const std::vector<int64_t>& layers) {
  std::vector<std::vector<int64_t>> groups;
  if (!share_groups.empty() && share_every > 0) fail("", "give --share-groups or --share-every, not both");
  if (share_every < 0) fail("", "--share-every must be positive, got " + std::to_string(share_every));
  if (share_every == 1) fail("", "--share-every 1 shares nothing (use 2 or more)");
  if (share_every > 1) {
    for (size_t i = 0; i < layers.size(); i += static_cast<size_t>(share_every)) {
      std::vector<int64_t> g(layers.begin() + static_cast<std::ptrdiff_t>(i),
                             layers.begin() + static_cast<std::ptrdiff_t>(std::min(layers.size(), i + static_cast<size_t>(share_every))));
      if (g.size() > 1) groups.push_back(std::move(g));
    }
    return groups;
  }
  std::stringstream ss(share_groups);
  for (std::string item; std::getline(ss, item, ',');) {
    std::vector<int64_t> g;
    if (const size_t dash = item.find('-'); dash != std::string::npos) {
      const int64_t a = parse_index(item.substr(0, dash), "--share-groups");
      const int64_t b = parse_index(item.substr(dash + 1), "--share-groups");
      if (b <= a) fail("", "--share-groups: \"" + item + "\" is not an increasing range");
      for (int64_t l = a; l <= b; ++l) g.push_back(l);
    } else {
      std::stringstream parts(item);
      for (std::string one; std::getline(parts, one, '+');) g.push_back(parse_index(one, "--share-groups"));
    }
    std::sort(g.begin(), g.end());
    if (g.size() < 2) fail("", "--share-groups: \"" + item + "\" has one layer; a group needs two or more");
    for (int64_t l : g)
      if (!std::binary_search(layers.begin(), layers.end(), l))
        fail("", "--share-groups: layer " + std::to_string(l) + " is not one of the layers converted (--layers)");
    groups.push_back(std::move(g));
  }
  std::vector<int64_t> all;
  for (const auto& g : groups) all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  if (std::adjacent_find(all.begin(), all.end()) != all.end()) fail("", "--share-groups: a layer is in two groups");
  return groups;
}

}  // namespace moekit::compress
