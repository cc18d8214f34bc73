"""A faithful re-implementation of the official CHAIR script, for parity tests only.

Written from Maxlinn/CHAIR-metric-standalone ``chair.py`` (the standalone port of LisaAnne/Hallucination
``utils/chair.py``, used by OPERA): the synonym parse (lines 153-160), the double-word table (165-185),
``caption_to_words`` (200-236) and ``compute_chair`` (291-374), with NLTK's ``word_tokenize`` and a
transcription of ``pattern.en.singularize`` (clips/pattern 3.6, ``pattern/text/en/inflect.py``). It
shares no code with ``halluguard.metrics``: the synonyms are read from the shipped verbatim copy only.
"""

from __future__ import annotations

import re
from importlib import resources

# -- pattern.en.singularize, transcribed ---------------------------------------------------------
plural_prepositions = set((
    "about", "before", "during", "of", "till", "above", "behind", "except", "off", "to", "across", "below",
    "for", "on", "under", "after", "beneath", "from", "onto", "until", "among", "beside", "in", "out",
    "unto", "around", "besides", "into", "over", "upon", "at", "between", "near", "since", "with",
    "athwart", "betwixt", "beyond", "but", "by"))  # fmt: skip
singular_rules = [(re.compile(a), b) for a, b in [
    (r'(?i)(.)ae$', '\\1a'), (r'(?i)(.)itis$', '\\1itis'), (r'(?i)(.)eaux$', '\\1eau'),
    (r'(?i)(quiz)zes$', '\\1'), (r'(?i)(matr)ices$', '\\1ix'), (r'(?i)(ap|vert|ind)ices$', '\\1ex'),
    (r'(?i)^(ox)en', '\\1'), (r'(?i)(alias|status)es$', '\\1'), (r'(?i)([octop|vir])i$', '\\1us'),
    (r'(?i)(cris|ax|test)es$', '\\1is'), (r'(?i)(shoe)s$', '\\1'), (r'(?i)(o)es$', '\\1'),
    (r'(?i)(bus)es$', '\\1'), (r'(?i)([m|l])ice$', '\\1ouse'), (r'(?i)(x|ch|ss|sh)es$', '\\1'),
    (r'(?i)(m)ovies$', '\\1ovie'), (r'(?i)(.)ombies$', '\\1ombie'), (r'(?i)(s)eries$', '\\1eries'),
    (r'(?i)([^aeiouy]|qu)ies$', '\\1y'), (r"([aeo]l)ves$", "\\1f"), (r"([^d]ea)ves$", "\\1f"),
    (r"arves$", "arf"), (r"erves$", "erve"), (r"([nlw]i)ves$", "\\1fe"), (r'(?i)([lr])ves$', '\\1f'),
    (r"([aeo])ves$", "\\1ve"), (r'(?i)(sive)s$', '\\1'), (r'(?i)(tive)s$', '\\1'), (r'(?i)(hive)s$', '\\1'),
    (r'(?i)([^f])ves$', '\\1fe'), (r'(?i)(^analy)ses$', '\\1sis'),
    (r'(?i)((a)naly|(b)a|(d)iagno|(p)arenthe|(p)rogno|(s)ynop|(t)he)ses$', '\\1\\2sis'),
    (r'(?i)(.)opses$', '\\1opsis'), (r'(?i)(.)yses$', '\\1ysis'), (r'(?i)(h|d|r|o|n|b|cl|p)oses$', '\\1ose'),
    (r'(?i)(fruct|gluc|galact|lact|ket|malt|rib|sacchar|cellul)ose$', '\\1ose'),
    (r'(?i)(.)oses$', '\\1osis'), (r'(?i)([ti])a$', '\\1um'), (r'(?i)(n)ews$', '\\1ews'), (r'(?i)s$', ''),
]]  # fmt: skip
singular_uninflected = set((
    "bison", "debris", "headquarters", "pincers", "trout", "bream", "diabetes", "herpes", "pliers", "tuna",
    "breeches", "djinn", "high-jinks", "proceedings", "whiting", "britches", "eland", "homework", "rabies",
    "wildebeest", "carp", "elk", "innings", "salmon", "chassis", "flounder", "jackanapes", "scissors",
    "christmas", "gallows", "mackerel", "series", "clippers", "georgia", "measles", "shears", "cod",
    "graffiti", "mews", "species", "contretemps", "mumps", "swine", "corps", "news", "swiss"))  # fmt: skip
singular_uncountable = set((
    "advice", "equipment", "happiness", "luggage", "news", "software", "bread", "fruit", "information",
    "mathematics", "progress", "understanding", "butter", "furniture", "ketchup", "mayonnaise", "research",
    "water", "cheese", "garbage", "knowledge", "meat", "rice", "electricity", "gravel", "love", "mustard",
    "sand"))  # fmt: skip
singular_ie = set((
    "alergie", "cutie", "hoagie", "newbie", "softie", "veggie", "auntie", "doggie", "hottie", "nightie",
    "sortie", "weenie", "beanie", "eyrie", "indie", "oldie", "stoolie", "yuppie", "birdie", "freebie",
    "junkie", "^pie", "sweetie", "zombie", "bogie", "goonie", "laddie", "pixie", "techie", "bombie",
    "groupie", "laramie", "quickie", "^tie", "collie", "hankie", "lingerie", "reverie", "toughie", "cookie",
    "hippie", "meanie", "rookie", "valkyrie"))  # fmt: skip
singular_irregular = {
    "atlantes": "atlas", "atlases": "atlas", "axes": "axe", "beeves": "beef", "brethren": "brother",
    "children": "child", "corpora": "corpus", "corpuses": "corpus", "ephemerides": "ephemeris", "feet": "foot",
    "ganglia": "ganglion", "geese": "goose", "genera": "genus", "genii": "genie", "graffiti": "graffito",
    "helves": "helve", "kine": "cow", "leaves": "leaf", "loaves": "loaf", "men": "man",
    "mongooses": "mongoose", "monies": "money", "moves": "move", "mythoi": "mythos", "numena": "numen",
    "occipita": "occiput", "octopodes": "octopus", "opera": "opus", "opuses": "opus", "our": "my",
    "oxen": "ox", "penes": "penis", "penises": "penis", "people": "person", "sexes": "sex",
    "soliloquies": "soliloquy", "teeth": "tooth", "testes": "testis", "trilbys": "trilby", "turves": "turf",
    "zoa": "zoon",
}  # fmt: skip


def singularize(word, custom={}):  # noqa: B006 - as in the source
    if word in custom:
        return custom[word]
    if "-" in word:
        w = word.split("-")
        if len(w) > 1 and w[1] in plural_prepositions:
            return singularize(w[0], custom) + "-" + "-".join(w[1:])
    if word.endswith("'"):
        return singularize(word[:-1]) + "'s"
    w = word.lower()
    for x in singular_uninflected:
        if x.endswith(w):
            return word
    for x in singular_uncountable:
        if x.endswith(w):
            return word
    for x in singular_ie:
        if w.endswith(x + "s"):
            return w
    for x in singular_irregular:
        if w.endswith(x):
            return re.sub('(?i)' + x + '$', singular_irregular[x], word)
    for suffix, inflection in singular_rules:
        m = suffix.search(word)
        g = m and m.groups() or []
        if m:
            for k in range(len(g)):
                if g[k] is None:
                    inflection = inflection.replace('\\' + str(k + 1), '')
            return suffix.sub(inflection, word)
    return word


# -- NLTK's word_tokenize (its trained English Punkt model when installed) ------------------------
def word_tokenize(text):
    import nltk
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    try:
        return nltk.word_tokenize(text)
    except LookupError:  # no punkt data: the untrained model, as halluguard documents
        return [t for s in PunktSentenceTokenizer().tokenize(text) for t in NLTKWordTokenizer().tokenize(s)]


# -- the CHAIR class, as in chair.py ------------------------------------------------------------
class CHAIR:
    def __init__(self, imid_to_objects):
        text = resources.files("halluguard").joinpath("data/chair_synonyms.txt").read_text(encoding="utf-8")
        synonyms_txt = "\n" + "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        synonyms = synonyms_txt.splitlines()
        synonyms = [s.strip().split(', ') for s in synonyms]
        self.mscoco_objects = []
        self.inverse_synonym_dict = {}
        for synonym in synonyms:
            self.mscoco_objects.extend(synonym)
            for s in synonym:
                self.inverse_synonym_dict[s] = synonym[0]
        coco_double_words = ['motor bike', 'motor cycle', 'air plane', 'traffic light', 'street light',
                             'traffic signal', 'stop light', 'fire hydrant', 'stop sign', 'parking meter',
                             'suit case', 'sports ball', 'baseball bat', 'baseball glove', 'tennis racket',
                             'wine glass', 'hot dog', 'cell phone', 'mobile phone', 'teddy bear', 'hair drier',
                             'potted plant', 'bow tie', 'laptop computer', 'stove top oven', 'hot dog',
                             'teddy bear', 'home plate', 'train track']
        animal_words = ['bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe',
                        'animal', 'cub']
        vehicle_words = ['jet', 'train']
        self.double_word_dict = {}
        for double_word in coco_double_words:
            self.double_word_dict[double_word] = double_word
        for animal_word in animal_words:
            self.double_word_dict['baby %s' % animal_word] = animal_word
            self.double_word_dict['adult %s' % animal_word] = animal_word
        for vehicle_word in vehicle_words:
            self.double_word_dict['passenger %s' % vehicle_word] = vehicle_word
        self.double_word_dict['bow tie'] = 'tie'
        self.double_word_dict['toilet seat'] = 'toilet'
        self.double_word_dict['wine glas'] = 'wine glass'
        self.imid_to_objects = imid_to_objects

    def caption_to_words(self, caption):
        words = word_tokenize(caption.lower())
        words = [singularize(w) for w in words]
        i = 0
        double_words = []
        while i < len(words):
            double_word = ' '.join(words[i:i + 2])
            if double_word in self.double_word_dict:
                double_words.append(self.double_word_dict[double_word])
                i += 2
            else:
                double_words.append(words[i])
                i += 1
        words = double_words
        if ('toilet' in words) & ('seat' in words):
            words = [word for word in words if word != 'seat']
        words = [word for word in words if word in set(self.mscoco_objects)]
        node_words = [self.inverse_synonym_dict[word] for word in words]
        return words, node_words

    def compute_chair(self, caps, eval_imids):
        num_caps = num_hallucinated_caps = hallucinated_word_count = coco_word_count = 0.0
        num_recall_gt_objects = num_gt_objects = 0.0
        sentences = []
        for cap, imid in zip(caps, eval_imids):
            words, node_words = self.caption_to_words(cap)
            gt_objects = self.imid_to_objects[imid]
            coco_word_count += len(node_words)
            hallucinated = False
            recall_gt_objects = set()
            for word, node_word in zip(words, node_words):
                if node_word not in gt_objects:
                    hallucinated_word_count += 1
                    hallucinated = True
                else:
                    recall_gt_objects.add(node_word)
            num_caps += 1
            if hallucinated:
                num_hallucinated_caps += 1
            num_gt_objects += len(gt_objects)
            num_recall_gt_objects += len(recall_gt_objects)
            sentences.append(list(node_words))
        return {
            "CHAIRs": num_hallucinated_caps / num_caps,
            "CHAIRi": hallucinated_word_count / coco_word_count,
            "Recall": num_recall_gt_objects / num_gt_objects,
            "sentences": sentences,
        }
