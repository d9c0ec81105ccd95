/* test_stop.c — stop strings over streamed text (src/sample/stop.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "sample/stop.h"

static void feed(slm_stopper *s, const char *const *pieces, int n, char *out) {
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        int hit = slm_stopper_push(s, pieces[i], strlen(pieces[i]));
        const char *t;
        size_t len;
        slm_stopper_take(s, false, &t, &len);
        strncat(out, t, len);
        if (hit) return;
    }
    const char *t;
    size_t len;
    slm_stopper_take(s, true, &t, &len);
    strncat(out, t, len);
}

Test(stop, straddling_pieces_are_cut_before_the_stop) {
    const char *stops[] = { "</end>", "STOP" };
    slm_stopper *s = slm_stopper_new(stops, 2);
    const char *pieces[] = { "hello </", "en", "d> never" };
    char out[256];
    feed(s, pieces, 3, out);
    cr_assert_str_eq(out, "hello ");
    cr_assert(slm_stopper_hit(s));
    cr_assert_str_eq(slm_stopper_text(s, NULL), "hello ");
    cr_assert_eq(slm_stopper_push(s, "more", 4), 1, "pushes after a stop are ignored");
    slm_stopper_free(s);
}

Test(stop, held_back_prefix_is_released_when_it_cannot_match) {
    const char *stops[] = { "abc" };
    slm_stopper *s = slm_stopper_new(stops, 1);
    const char *t;
    size_t len;
    cr_assert_eq(slm_stopper_push(s, "xxab", 4), 0);
    slm_stopper_take(s, false, &t, &len);
    cr_assert_eq(len, 2, "'ab' is held back");
    cr_assert_eq(slm_stopper_push(s, "d", 1), 0);
    slm_stopper_take(s, false, &t, &len);
    cr_assert_eq(len, 3);
    cr_assert_eq(strncmp(t, "abd", 3), 0);
    slm_stopper_free(s);
}

Test(stop, earliest_of_several_stops_wins_and_no_stops_passes_through) {
    const char *stops[] = { "world", "lo w", "" };
    slm_stopper *s = slm_stopper_new(stops, 3);
    const char *pieces[] = { "hello world" };
    char out[64];
    feed(s, pieces, 1, out);
    cr_assert_str_eq(out, "hel");
    slm_stopper_free(s);
    s = slm_stopper_new(NULL, 0);
    feed(s, pieces, 1, out);
    cr_assert_str_eq(out, "hello world");
    cr_assert(!slm_stopper_hit(s));
    slm_stopper_free(s);
}
