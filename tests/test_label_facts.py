"""Names from facts about a topic's texts: the script or language they are written in, one text repeated, or an
opening most of them share."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa

from atlas.pipeline.label import Candidate
from atlas.pipeline.label_facts import fact_names, main_script, map_writing, sampled_texts, topic_facts
from atlas.pipeline.languages import latin_language

# PyPI summaries (real uploads) of the kinds the model cannot name
CHINESE = ["关于B站的一个爬虫，可以获取视频的信息，下载视频等", "验证打包功能的测试包, 请勿下载",
           "微信小程序/公众号服务端接口集成SDK（非所有接口，持续更新中）", "一个用 Python 写的命令行待办事项工具",
           "常用工具方法的封装", "Makes playwright stealthy like a ninja!", "", "内部系统的异步任务调度器"]
CYRILLIC = ["Командная строка для BOTIX Public API", "Асинхронный REST-клиент для API Finam", "мій проект",
            "Универсальная библиотека python для большинства задач", "Wrapper for 대신증권 CYBOS Plus Open API"]
PLACEHOLDERS = ["A small example package", "A small example package", "a small example package.",
                "A small example package 2", "My first Python package", "A small example package"]
ENGLISH = ["A simple calculator for adding and multiplying two numbers", "RPN calculator for CLI",
           "Utils for tornado api cache, function timer.", "A text util package"]
IBERIAN = ["Extractor automático de índices de notas desde PDFs financieros chilenos (NIIF)",
           "Una biblioteca que contiene solo el ORM de Django",
           "Pacote utilizado para fazer alterações em arquivos de texto",
           "LITHO-SONIC: Lithospheric Resonance & Infrasonic Geomechanical Observatory",
           "Un paquete para saludar y despedir", "Brincando com distribuição python", "Procesamiento de audios",
           "Ampliando o acesso aos dados e ao conhecimento sobre as favelas brasileiras.",
           "Fast univariate time series models that run in Pyodide"]
FRENCH = ["Encodage/décodage réversible de texte selon le protocole KODE 8", "ncurses based TUI framwork",
          "Génère des quittances de loyers.", "Client Python pour interagir avec l'API Pilote (DITP).",
          "A fast implementation of the longest common subsequence.", "Outil pour déboguer Flutter/Android en Wi-Fi",
          "asdasdasd"]

# PyPI summaries of packages generated from one template (real uploads), and one other
TEMPLATED = [f"Type annotations for boto3 {service} 1.43.0 service generated with mypy-boto3-builder 8.12.0"
             for service in ("DevOpsGuru", "Personalize", "Textract", "RoboMaker")] + [
    "Python implementation of the iopsystems h2 histogram, interoperable with Rezolus"]
# Debian's summary line, then its description (the sample's texts)
CROSS = [f"GNU C++ compiler (cross compiler for {arch} architecture)\nThis is the GNU C++ compiler, a fairly portable "
         "optimizing compiler for C++." for arch in ("ppc64", "hppa", "x32")] + [
    "GNU C compiler (cross compiler for ppc64 architecture)\nThis is the GNU C compiler."]


def names(texts: list[str]) -> list[tuple[str, str]]:
    return [(c.label, c.source) for c in fact_names(texts)]


def test_texts_mainly_in_a_non_latin_script_are_named_by_it():
    assert names(CHINESE) == [("Texts in Chinese", "script")]
    assert fact_names(CHINESE)[0].settled  # 7 of 8 texts with letters: the model cannot read them
    assert not fact_names(CHINESE, common="CJK")[0].settled  # but a map of Chinese texts wants their subjects
    assert fact_names(CHINESE)[0].description == "Most of these texts are written in Chinese."
    assert names(CYRILLIC) == [("Texts in Cyrillic script", "script")]
    assert names(["ゲームのツール", "日本語の形態素解析器", "Python tools"]) == [("Texts in Japanese", "script")]
    assert names(CHINESE[:4] + CYRILLIC[:4]) == [("Texts in Chinese and Cyrillic script", "script")]
    # half the texts with letters in non-Latin scripts, named by the main one; not most of them in it
    assert fact_names(["파이썬 개인 유틸리티", "연습문제", "мій проект", "Python tools", "Trading API", "Utils"]) == [
        Candidate("Texts in Korean", "script", "Many of these texts are written in Korean.")]
    assert names(["파이썬 개인 유틸리티", "мій проект", "Python tools", "Trading API", "Utils"]) == []
    assert names(["파이썬 개인 유틸리티", "연습문제", "мій проект", "Python tools"]) == [
        ("Texts in Korean and Cyrillic script", "script")]
    # most texts must have letters: a topic of empty texts with a few Chinese ones is not "in Chinese"
    assert names(["", "", "", "常用工具方法的封装", "内部系统的异步任务调度器"]) == [("Empty texts", "repeated")]


def test_a_text_repeated_by_most_records_is_quoted():
    quoted = Candidate('Repeated text: "A small example package"', "repeated",
                       'Most of these records read "A small example package".')
    assert fact_names(PLACEHOLDERS[:3] + ENGLISH[:3]) == [quoted]  # half: a name, below the model's
    # 60% or more (5 of 6): the topic's name, settled
    assert fact_names(PLACEHOLDERS) == [replace(quoted, settled=True)]
    long = ["This package can be used to compute things in a long sentence"] * 3 + ["Other"]
    assert names(long) == [('Repeated text: "This package can be used…"', "repeated")]
    assert names(["", "", " ", "Chef-Solo"]) == [("Empty texts", "repeated")]
    # both facts, the one that holds for more of the texts first
    assert names(["测试包"] * 3 + ["常用工具方法的封装", "内部系统的异步任务调度器", "Other"]) == [
        ("Texts in Chinese", "script"), ('Repeated text: "测试包"', "repeated")]
    # a settled one first, though the other holds for more; of two settled, the repeated text
    assert names(["测试包"] * 3 + ["常用工具方法的封装", "Other"]) == [
        ('Repeated text: "测试包"', "repeated"), ("Texts in Chinese", "script")]


def test_an_opening_most_texts_share_names_them():
    assert fact_names(TEMPLATED) == [Candidate("Type annotations for boto3", "opening",
                                               'Most of these records begin "Type annotations for boto3 …".')]
    assert names(TEMPLATED[:2] + ENGLISH) == []  # under half of them
    assert names(TEMPLATED[:2] + ENGLISH[:1]) == []  # two thirds of them, but fewer than three
    assert names(PLACEHOLDERS[:3] + ENGLISH[:3]) == [('Repeated text: "A small example package"', "repeated")]
    assert names(CROSS) == [("GNU C++ compiler", "opening")]  # the first line, cut before an unclosed bracket
    # a summary run into its description is cut before the sentence
    run_on = [f"GNU Objective-C++ compiler This is the compiler for {arch}." for arch in ("x32", "hppa", "m68k")]
    assert names(run_on) == [("GNU Objective-C++ compiler", "opening")]
    assert names([f"Django app, with {x}" for x in ("REST", "forms", "admin")]) == [("Django app", "opening")]
    # one word that is not filler: no name
    assert names([f"a tool for {x} files" for x in ("PDF", "CSV", "XML")]) == []
    assert names([f"This is a {x} package" for x in ("PDF", "CSV", "XML")]) == []
    assert names([f"# Foo {x}" for x in ("PDF", "CSV", "XML")]) == []
    # Title Case is not cut at its capitals; a leading blank line is not the first line
    assert names([f"\nType Annotations For Boto3 {x} service" for x in ("S3", "EC2", "IAM")]) == [
        ("Type Annotations For Boto3", "opening")]
    # the first line only: a short title whose second line begins the same way in each text
    assert names([f"{x} tools\nTools for working with {x} files" for x in ("PDF", "CSV", "XML")]) == []
    # small letters capitalised in a word, not in a package's name
    assert names([f"dataclass for boto3 {x}" for x in ("S3", "EC2", "IAM")]) == [("Dataclass for boto3", "opening")]
    assert names([f"mypy-boto3-s3 stubs for {x}" for x in ("S3", "EC2", "IAM")]) == [("mypy-boto3-s3 stubs", "opening")]


def test_a_text_written_once_is_not_repeated():
    """In a topic of two or three records (a small --min-cluster-size) one text is half, or a third."""
    assert names(["Fast JSON parser", "UNKNOWN"]) == []
    assert fact_names(["Fast JSON parser", "Web tools", "UNKNOWN"], finest=True) == []


def test_a_short_text_a_third_of_a_finest_topic_repeats_is_a_placeholder():
    """A finest topic of the 886k PyPI map: 36% "UNKNOWN", the rest odd uploads; the model named
    it "Tool-specific information"."""
    unknown = ["UNKNOWN", "UNKNOWN", "unknown", *ENGLISH, "Data tools", "Simple pastebin on top of bottle"]
    assert fact_names(unknown, finest=True) == [
        Candidate('Repeated text: "UNKNOWN"', "repeated", 'Many of these records read "UNKNOWN".', True)]
    assert fact_names(unknown) == []  # a parent is a category: a third of it is not what it is
    assert fact_names(unknown[1:], finest=True) == []  # 2 of 8: under a third
    # a long text is a family's template, which a model names better (Debian's GNU compilers)
    fortran = ["GNU Fortran compiler This is the GNU Fortran compiler, which compiles Fortran"] * 3 + unknown[3:]
    assert fact_names(fortran, finest=True) == []
    assert [(c.label, c.settled) for c in fact_names(["", "", "", *unknown[4:]], finest=True)] == [
        ("Empty texts", True)]


def test_texts_mainly_in_a_language_other_than_english_are_named_by_it():
    # 6 of the 9 texts with letters (60% or more): settled; the French 4 of 7 are not
    assert fact_names(IBERIAN) == [Candidate("Texts in Spanish and Portuguese", "script",
                                             "Most of these texts are written in Spanish and Portuguese.", True)]
    assert fact_names(FRENCH) == [Candidate("Texts in French", "script", "Most of these texts are written in French.")]
    # most texts too short to tell: not named from the few that tell
    assert names(FRENCH[:3] + ["asdasdasd", "fundrive-alipan", "Digimat Simple DataLogger", "TUI framework"]) == []
    english = ["A tool for the analysis of logs", "Python client for the Foo API", "Utilities for working with dates"]
    assert [latin_language(t) for t in FRENCH[2:5] + english] == ["French", "French"] + ["English"] * 4
    assert names(FRENCH[2:5] + english) == []  # 2 of the 6 told are French


def test_latin_language():
    assert [latin_language(t) for t in IBERIAN[:4] + FRENCH[:2] + ENGLISH[:2]] == [
        "Spanish", "Spanish", "Portuguese", None, "French", None, "English", None]
    assert [latin_language(t) for t in [
        "Eine einfache Bibliothek für die Analyse von Daten", "Yeşilçam filmleri seçme ve oynatma uygulaması.",
        "Thư viện phép tính cơ bản và công thức hình chữ nhật", "Prosta biblioteka przykład (Poetry)",
        "Pustaka sederhana untuk membuat API dengan mudah", "Een eenvoudige bibliotheek voor het lezen van bestanden",
        "Una semplice libreria per la gestione dei dati",
        "Especificaciones para Sistema de Control de Inventario",  # para, de, de: Spanish or Portuguese
        "Die roller for board games",
        "Thu vien toan hoc co ban"]] == [  # Vietnamese written without its marks (a PyPI summary)
        "German", "Turkish", "Vietnamese", "Polish", "Indonesian", "Dutch", "Italian", None, None, "Vietnamese"]


def test_vietnamese_with_and_without_its_marks_is_one_language():
    # PyPI summaries of one 886k topic: half the Vietnamese ones are typed without diacritics
    vietnamese = ["Thư viện tính toán và hình học", "Thu vien toan hoc co ban", "Day la test thu vien tinh toan 2 so",
                  "Thu vien phep tinh co ban va hinh chu nhat",
                  "Thư viện xử lý chạy các script của project mỗi khi deploy version mới"]
    # without the unmarked words 3 of the 8 would say their language: too few to tell
    assert names(vietnamese + ENGLISH[:3]) == [("Texts in Vietnamese", "script")]
    assert latin_language("A tool for math (toan hoc) in Python") == "English"


def test_an_english_topic_gets_no_fact_name():
    assert names(ENGLISH) == []
    assert names(ENGLISH + PLACEHOLDERS[:3]) == []  # 3 of 7: not most
    assert names([]) == []


def test_main_script():
    assert [main_script(t) for t in ["Python client for Toss Securities (토스증권) Open API", "파이썬 개인 유틸리티",
                                     "ゲームのツール", "基于OneBot适配器的NoneBot2获取玩家数据的插件", "1.0", "",
                                     "A plain ASCII text", "abc", "ABC 1.0", "Señal: пакет для работы"]] == \
        ["LATIN", "HANGUL", "HIRAGANA", "CJK", None, None, "LATIN", "LATIN", "LATIN", "CYRILLIC"]


def test_sampled_texts_draws_each_topics_members_at_every_level():
    texts = pa.array([f"t{i}" for i in range(10)])
    labels = np.array([[0, 0, 0, 0, 0, 0, 1, 1, 1, 1], [2, 2, 3, 3, 3, 3, 4, 4, 4, 4]])
    sample = sampled_texts(texts, labels, 5, per_topic=3, seed=1)
    assert [len(s) for s in sample] == [3, 3, 2, 3, 3]
    assert set(sample[2]) == {"t0", "t1"} and set(sample[1]) <= {"t6", "t7", "t8", "t9"}
    assert set(sample[0]) <= {f"t{i}" for i in range(6)}
    assert sampled_texts(texts, labels, 5, per_topic=3, seed=1) == sample
    assert sampled_texts(texts, labels, 5, per_topic=3, seed=2) != sample


def test_no_topic_of_the_small_debian_map_gets_a_fact_name(small_map):
    points = small_map.points()
    labels = np.stack([points.column(f"topic_{lvl}").to_numpy() for lvl in range(small_map.manifest()["levels"])])
    texts = small_map.records().column("description").take(pa.array(points.column("row").to_numpy()))
    samples = sampled_texts(texts, labels, small_map.topics().num_rows)
    assert [len(s) for s in samples] == [min(50, n) for n in small_map.topics().column("size").to_pylist()]
    assert [fact_names(s) for s in samples] == [[]] * len(samples)


def test_a_few_texts_repeated_by_most_records_are_named_by_the_commonest():
    junk = ["", "", "", "UNKNOWN", "unknown", "UNKNOWN", "Add your description here", "Add your description here",
            "Add your description here.", "A tool for X"]
    assert fact_names(junk) == [Candidate(
        'Empty texts and "UNKNOWN"', "repeated",
        'Most of these records are empty or repeat a few texts: "UNKNOWN", "Add your description here".', True)]
    # without empty texts not settled, though 60%: a family of records can share a template
    templates = PLACEHOLDERS[:2] + ["Add your description here"] * 3 + ["A small example package 2"] + ENGLISH
    assert fact_names(templates) == [Candidate(
        'Repeated texts like "A small example package"', "repeated",
        'Most of these records repeat a few texts: "A small example package", "Add your description here".')]
    # copies of a few texts, but not most of the records: no name from them
    assert names(templates[:5] + ENGLISH + ["Data tools", "Web tools"]) == []


def test_each_topic_is_named_from_its_own_sample():
    """Topics 1-3 are children of 0, topic 4 of 5: siblings of one fact get the same name here
    (label.py numbers the second when it chooses), and a name not settled stays so."""
    empty = ["", "", "", "Chef-Solo"]
    samples = [[], empty, ENGLISH, empty, empty, PLACEHOLDERS[:3] + ENGLISH[:3]]
    facts = topic_facts(samples, np.array([-1, 0, 0, 0, 5, -1]), np.array([12, 4, 4, 4, 4, 6]))
    assert [[(c.label, c.settled) for c in names] for names in facts] == [
        [], [("Empty texts", True)], [], [("Empty texts", True)], [("Empty texts", True)],
        [('Repeated text: "A small example package"', False)]]


def test_a_map_mostly_in_one_script_settles_no_name_by_it():
    """Topics 0 and 2 are the top level: weighted by size, the map is mostly Chinese (0) or
    mostly English (2 outweighs 0), which decides whether Chinese topic 1 is settled by it."""
    samples = [CHINESE, CHINESE, ENGLISH]
    parent = np.array([-1, 0, -1])
    assert map_writing(samples, parent, np.array([100, 100, 10])) == "CJK"
    assert map_writing(samples, parent, np.array([10, 10, 100])) == "LATIN"
    assert map_writing([[], CHINESE, []], parent, np.array([100, 100, 10])) == "LATIN"  # nothing drawn: no guess
    assert [names[0].settled for names in topic_facts(samples, parent, np.array([100, 100, 10]))[:2]] == [False] * 2
    assert [names[0].settled for names in topic_facts(samples, parent, np.array([10, 10, 100]))[:2]] == [True] * 2
