"""The response cache's rules, without a database: what it keeps, what drops it, when it is off."""

from __future__ import annotations

from aiohttp import web

from app.store.changes import Change, parse_change
from app.web.cache import ResponseCache, tags_of


def _response(body: bytes = b'{"id": 1}', status: int = 200) -> web.Response:
    response = web.Response(body=body, status=status, content_type="application/json")
    response.headers["ETag"] = '"3"'
    return response


def _cache(**kwargs) -> ResponseCache:
    cache = ResponseCache(**kwargs)
    cache.on_change(None, connected=True)
    return cache


def test_a_kept_answer_comes_back_with_its_body_and_etag():
    cache = _cache()
    cache.put("k", [("protocol", 1)], _response(), since=cache.generation)
    hit = cache.get("k")
    assert hit is not None
    assert (hit.body, hit.headers["ETag"], hit.content_type) == (b'{"id": 1}', '"3"', "application/json")


def test_an_answer_read_while_something_changed_is_not_kept():
    cache = _cache()
    since = cache.generation
    cache.invalidate([("protocol", 99)])  # any change, even elsewhere, while the read was under way
    cache.put("k", [("protocol", 1)], _response(), since=since)
    assert cache.get("k") is None


def test_only_answers_tagged_with_a_changed_row_are_dropped():
    cache = _cache()
    cache.put("one", [("protocol", 1)], _response(), since=cache.generation)
    cache.put("page", [("project_protocols", 7)], _response(), since=cache.generation)
    cache.put("other", [("protocol", 2)], _response(), since=cache.generation)
    cache.on_change(Change("protocol_runs", 1, 7), connected=True)
    assert cache.get("one") is None
    assert cache.get("page") is None
    assert cache.get("other") is not None
    cache.on_change(Change("step_runs", 2, 2), connected=True)  # steps are not in these answers
    assert cache.get("other") is not None


def test_the_cache_is_off_while_the_feed_is_down_and_empties_when_it_flips():
    cache = _cache()
    cache.put("k", [("protocol", 1)], _response(), since=cache.generation)
    cache.on_change(None, connected=False)
    assert (cache.get("k"), cache.enabled) == (None, False)
    cache.put("k", [("protocol", 1)], _response(), since=cache.generation)
    assert cache.get("k") is None
    cache.on_change(None, connected=True)
    cache.put("k", [("protocol", 1)], _response(), since=cache.generation)
    assert cache.get("k") is not None


def test_errors_are_never_kept_and_size_zero_keeps_nothing():
    cache = _cache()
    cache.put("k", [("protocol", 1)], _response(status=404), since=cache.generation)
    assert cache.get("k") is None
    off = _cache(max_entries=0)
    off.put("k", [("protocol", 1)], _response(), since=off.generation)
    assert off.get("k") is None


def test_the_oldest_answers_go_first_beyond_the_cap():
    cache = _cache(max_entries=2)
    for key in ("a", "b", "c"):
        cache.put(key, [("protocol", ord(key))], _response(), since=cache.generation)
    assert [cache.get(k) is not None for k in ("a", "b", "c")] == [False, True, True]
    assert len(cache) == 2
    cache.invalidate([("protocol", ord("a"))])  # its tag index was cleaned with it: nothing breaks


def test_change_payloads_are_read_as_the_trigger_writes_them():
    assert parse_change("protocol_runs:12:3") == Change("protocol_runs", 12, 3)
    assert parse_change("projects:4:4") == Change("projects", 4, 4)
    assert parse_change("events:9:") == Change("events", 9, None)
    assert parse_change("garbage") is None
    assert parse_change(":1:2") is None
    assert tags_of(Change("projects", 4, 4)) == [("project", 4), ("project_protocols", 4)]
    assert tags_of(Change("events", 9, 1)) == []


def test_a_change_no_answer_shows_does_not_stop_a_read_in_flight_from_being_kept():
    cache = _cache()
    since = cache.generation
    cache.on_change(Change("events", 5, 1), connected=True)
    cache.on_change(Change("step_runs", 3, 7), connected=True)
    cache.put("k", [("protocol", 7)], _response(), since=since)
    assert cache.get("k") is not None
    cache.on_change(Change("protocol_runs", 99, 1), connected=True)  # a run: any read in flight is suspect
    cache.put("late", [("protocol", 7)], _response(), since=since)
    assert cache.get("late") is None
