// Boost.JSON, compiled once for the whole program (header-only mode: every other file includes
// <boost/json.hpp> only).
#include <boost/json/src.hpp>
