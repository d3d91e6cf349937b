// The Catch2 main, compiled once into the support library.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
