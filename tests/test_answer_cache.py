from concurrent.futures import ThreadPoolExecutor

from atlas.llm.cache import AnswerCache


def test_answer_cache_takes_answers_from_several_threads_at_once(tmp_path):
    cache = AnswerCache(tmp_path / "answers.sqlite")

    def write(thread: int) -> None:
        for i in range(300):
            cache.put(f"{thread}-{i}", f"answer {i}")
            assert cache.get(f"{thread}-{i}") == f"answer {i}"

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    assert cache.db.execute("SELECT count(*) FROM answers").fetchone()[0] == 2400
