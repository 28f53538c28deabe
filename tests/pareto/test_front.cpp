#include <catch2/catch.hpp>
#include <random>

#include "pareto/front.h"

using namespace edmips;

TEST_CASE("a single point is its own front", "[pareto]") {
  CHECK(pareto_front({{5, 70}}) == std::vector<size_t>{0});
}

TEST_CASE("dominated points are dropped and the front is ordered by cost", "[pareto]") {
  // 1 dominates 3 (cheaper and better); 2 is costlier but better than 1.
  const std::vector<ParetoPoint> points = {{4, 80}, {1, 70}, {2, 75}, {3, 60}};
  CHECK(pareto_front(points) == std::vector<size_t>{1, 2, 0});
}

TEST_CASE("ties: equal cost keeps only the more accurate, equal accuracy only the cheaper", "[pareto]") {
  const std::vector<ParetoPoint> points = {{2, 70}, {2, 75}, {3, 75}, {1, 60}};
  CHECK(pareto_front(points) == std::vector<size_t>{3, 1});
}

TEST_CASE("exact duplicates do not dominate each other and are all kept", "[pareto]") {
  const std::vector<ParetoPoint> points = {{2, 70}, {2, 70}, {1, 50}, {2, 70}};
  CHECK(pareto_front(points) == std::vector<size_t>{2, 0, 1, 3});
}

TEST_CASE("when one point dominates everything the front is that point", "[pareto]") {
  const std::vector<ParetoPoint> points = {{3, 60}, {1, 90}, {2, 80}, {5, 85}};
  CHECK(pareto_front(points) == std::vector<size_t>{1});
}

TEST_CASE("the fast front equals the brute-force O(n^2) front on random sets", "[pareto]") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> coarse(0, 12);  // many ties and duplicates
  std::uniform_real_distribution<double> fine(0, 100);
  for (int round = 0; round < 300; ++round) {
    const size_t n = 1 + rng() % 60;
    std::vector<ParetoPoint> points;
    for (size_t i = 0; i < n; ++i) {
      points.push_back(round % 2 ? ParetoPoint{double(coarse(rng)), double(coarse(rng))}
                                 : ParetoPoint{fine(rng), fine(rng)});
    }
    INFO("round " << round << ", " << n << " points");
    REQUIRE(pareto_front(points) == pareto_front_brute_force(points));
  }
}

TEST_CASE("hypervolume matches hand-computed areas", "[pareto][hypervolume]") {
  const ParetoPoint reference{10, 0};
  // One point: box from cost 2 to 10, accuracy 0 to 50.
  CHECK(hypervolume({{2, 50}}, reference) == Approx(8 * 50));
  // Staircase: [1,4) x 30 + [4,10) x 60 = 90 + 360.
  CHECK(hypervolume({{1, 30}, {4, 60}}, reference) == Approx(3 * 30 + 6 * 60));
  // A dominated point and a duplicate add nothing.
  CHECK(hypervolume({{1, 30}, {4, 60}, {5, 40}, {4, 60}}, reference) == Approx(450));
  // Points beyond the reference are clipped away.
  CHECK(hypervolume({{12, 90}, {1, 30}}, reference) == Approx(9 * 30));
  CHECK(hypervolume({{1, 30}}, ParetoPoint{10, 40}) == 0);
  CHECK(hypervolume({}, reference) == 0);
}

TEST_CASE("the front interpolates in log cost between neighbours", "[pareto]") {
  const std::vector<ParetoPoint> front = {{1, 60}, {4, 80}};
  double accuracy = 0;
  REQUIRE(interpolate_front(front, 2, accuracy));
  CHECK(accuracy == Approx(70));  // log2(2) is halfway between log2(1) and log2(4)
  CHECK_FALSE(interpolate_front(front, 8, accuracy));
  CHECK_FALSE(interpolate_front(front, 0.5, accuracy));
  REQUIRE(interpolate_front(front, 4, accuracy));
  CHECK(accuracy == Approx(80));
}
