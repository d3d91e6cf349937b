// MOEKIT_CLONES: a function built for AVX-512 and AVX2 as well as the baseline ISA, the version
// chosen by the CPU when the program starts (GCC function multi-versioning). For plain loops the
// compiler vectorises; no source file needs -m flags.
#pragma once

#define MOEKIT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
