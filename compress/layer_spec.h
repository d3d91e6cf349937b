// The layer lists of moefy's options: --layers "0,2,4" and the Go-Wider sharing groups of
// --share-groups "0-1,2-3" / "0+2,1+3" or --share-every K. Errors name the option.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moekit::compress {

// Increasing layer indices in [0, num_layers); empty text = all layers.
std::vector<int64_t> parse_layer_list(const std::string& text, int64_t num_layers);
// The sharing groups over the MoE layers `layers` (increasing): from share_groups text, or
// consecutive runs of share_every layers (a leftover single layer stays unshared). Every group has
// two or more layers, each layer in at most one group.
std::vector<std::vector<int64_t>> parse_share_groups(const std::string& share_groups, int share_every,
                                                     const std::vector<int64_t>& layers);

}  // namespace moekit::compress
