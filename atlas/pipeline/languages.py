"""Which language a short text in the Latin script is written in, told by its commonest words.

A one-line summary ("Una librería para leer archivos CSV") carries few words, but the short
ones every sentence needs (articles, prepositions, conjunctions) and the letters only some
languages use (ñ, ã, ß, ğ, ł, ơ) say its language. Each language's score is how many of the
text's words are among its common words, plus one for each of its own letters the text has;
a text is in the language that scores highest, by at least MIN_SCORE and more than English
and any other. Texts too short to tell, and ties (Spanish or Portuguese "para datos"), are
not placed. label_facts names a topic by the language most of its texts are written in.
"""

from __future__ import annotations

import re

MIN_SCORE = 2
# the most common short words of each language (and a few words PyPI summaries in it use
# often): shared words count for every language that has them
WORDS = {
    "English": "the a an and or for of to in on with from by is are be it this that your as at into using",
    "Spanish": "el la los las del de en un una unos para con por que y es su sus como desde sobre sin al "
               "biblioteca librería paquete herramienta datos archivos",
    "Portuguese": "o os as do da dos das de um uma em no na nos nas com para que e é ao pelo pela "
                  "biblioteca pacote ferramenta dados arquivos projeto",
    "French": "le la les des du de un une et pour avec dans sur est au aux ce cette qui en par "
              "bibliothèque outil données fichiers",
    "German": "der die das den dem des und für mit ein eine einen zur zum von ist nicht auf im aus "
              "bibliothek werkzeug daten dateien",
    "Italian": "il lo gli della delle dei del di un una per con che è e alla al nel "
               "libreria strumento dati",
    "Dutch": "de het een van voor met en op is niet zijn naar bij om "
             "bibliotheek gegevens",
    "Turkish": "ve bir için ile bu da de olan gibi kütüphanesi kütüphane veri aracı",
    "Indonesian": "dan untuk yang dengan ini dari di ke pada sebuah sederhana membuat pustaka",
    "Polish": "i w z na do dla się jest oraz biblioteka prosta przykład",
    "Vietnamese": "của và cho các là với một thư viện được trong những này "
                  "thu vien cua duoc nhung toan hoc tinh",  # written without its marks too
}
LETTERS = {
    "Spanish": "ñ¿¡", "Portuguese": "ãõ", "German": "ßä", "Turkish": "ğış", "Polish": "ąęłśźżćń",
    "Vietnamese": "ơưđạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ",
}


def _languages_of_words() -> dict[str, list[str]]:
    """Each common word: the languages (in WORDS' order) whose common words include it."""
    languages: dict[str, list[str]] = {}
    for language, words in WORDS.items():
        for word in set(words.split()):
            languages.setdefault(word, []).append(language)
    return languages


_LANGUAGES_OF = _languages_of_words()


def latin_language(text: str) -> str | None:
    """The language a Latin-script text is written in ("English", "Spanish"...), or None when
    it is too short to tell."""
    lowered = text.lower()
    words = re.findall(r"[^\W\d_]+", lowered)
    scores = dict.fromkeys(WORDS, 0)
    for word in words:
        for language in _LANGUAGES_OF.get(word, ()):
            scores[language] += 1
    for language, letters in LETTERS.items():
        scores[language] += sum(c in lowered for c in letters)
    (best, top), (_, second) = sorted(scores.items(), key=lambda item: -item[1])[:2]
    return best if top >= MIN_SCORE and top > second else None
