"""A faithful re-implementation of AMBER's ``inference.py`` (junyangwang0410/AMBER), for parity tests only.

``main`` is lines 54-336 of the official script with its inputs passed in instead of read from files:
the counters of ``data/metrics.txt`` (every ``*_num`` starting at 0.001), the generative loop (lines
90-171), the discriminative counting (173-245) and the printed, rounded figures (259-336).
``extract_nouns`` and ``check_synonyms_word`` are passed in: the official ones need NLTK's tagger data
and spaCy's ``en_core_web_lg``, neither of which is on PyPI.
"""

from __future__ import annotations

KEYS = ["chair", "safe_cover", "hallu_cover", "non_hallu", "qa_correct", "qa_no", "qa_ans_no"]
DIMS = ["as", "an", "aa", "ha", "asso"]


def _metrics():
    metrics = {}
    for key in KEYS + [f"{d}_{k}" for d in DIMS for k in ("qa_correct", "qa_no", "qa_ans_no")]:
        metrics[f"{key}_score"] = 0
        metrics[f"{key}_num"] = 0.001
    return metrics


def _dim(kind):
    return {"discriminative-attribute-state": "as", "discriminative-attribute-number": "an",
            "discriminative-attribute-action": "aa", "discriminative-hallucination": "ha"}.get(kind, "asso")


def main(inference_data, ground_truth, association, global_safe_words, extract_nouns, check_synonyms_word):
    metrics = _metrics()
    hallucination_words = []
    for word1 in association.keys():
        hallucination_words.append(word1)
        for word2 in association[word1]:
            hallucination_words.append(word2)
    for i in range(len(inference_data)):
        id = inference_data[i]['id']
        if ground_truth[id - 1]['type'] == 'generative':
            nouns = extract_nouns(inference_data[i]['response'])
            after_process_nouns = [noun for noun in nouns if noun in hallucination_words]
            safe_words, safe_list = [], []
            for idx, word in enumerate(ground_truth[id - 1]['truth']):
                safe_words += association[word]
                safe_list += [idx] * len(association[word])
            ha_words, ha_list = [], []
            for idx, word in enumerate(ground_truth[id - 1]['hallu']):
                ha_words += association[word]
                ha_list += [idx] * len(association[word])
            safe_words += ground_truth[id - 1]['truth']
            safe_len = len(ground_truth[id - 1]['truth'])
            safe_list += [0] * safe_len
            safe_flag_list = [0] * len(after_process_nouns)
            ha_words += ground_truth[id - 1]['hallu']
            ha_len = len(ground_truth[id - 1]['hallu'])
            ha_list += [0] * ha_len
            for idx, noun in enumerate(after_process_nouns):
                if noun in global_safe_words:
                    continue
                if noun in safe_words:
                    for j in range(len(safe_words)):
                        if noun == safe_words[j]:
                            if j < (len(safe_list) - safe_len):
                                safe_list[safe_list[j] + len(safe_list) - safe_len] = 1
                            else:
                                safe_list[j] = 1
                            break
                    continue
                if noun in ha_words:
                    for j in range(len(ha_words)):
                        if noun == ha_words[j]:
                            if j < (len(ha_list) - ha_len):
                                ha_list[ha_list[j] + len(ha_list) - ha_len] = 1
                            else:
                                ha_list[j] = 1
                            break
                for j, check_word in enumerate(ha_words):
                    if check_synonyms_word(noun, check_word):
                        if j < (len(ha_list) - ha_len):
                            ha_list[ha_list[j] + len(ha_list) - ha_len] = 1
                        else:
                            ha_list[j] = 1
                        break
                flag = False
                for j, check_word in enumerate(safe_words):
                    if check_synonyms_word(noun, check_word):
                        flag = True
                        if j < (len(safe_list) - safe_len):
                            safe_list[safe_list[j] + len(safe_list) - safe_len] = 1
                        else:
                            safe_list[j] = 1
                        break
                if flag:
                    continue
                safe_flag_list[idx] = 1
            metrics['chair_score'] += sum(safe_flag_list)
            metrics['chair_num'] += len(safe_flag_list)
            metrics['safe_cover_score'] += sum(safe_list[-safe_len:])
            metrics['safe_cover_num'] += len(safe_list[-safe_len:])
            metrics['hallu_cover_score'] += sum(ha_list[-ha_len:])
            metrics['hallu_cover_num'] += len(ha_list[-ha_len:])
            if sum(safe_flag_list) == 0:
                metrics['non_hallu_score'] += 1
            metrics['non_hallu_num'] += 1
        else:
            d = _dim(ground_truth[id - 1]['type'])
            metrics['qa_correct_num'] += 1
            metrics[f'{d}_qa_correct_num'] += 1
            truth = ground_truth[id - 1]['truth']
            response = inference_data[i]['response']
            if truth == 'yes':
                if response == 'Yes':
                    metrics['qa_correct_score'] += 1
                    metrics[f'{d}_qa_correct_score'] += 1
            else:
                metrics['qa_no_num'] += 1
                metrics[f'{d}_qa_no_num'] += 1
                if response == 'No':
                    metrics['qa_correct_score'] += 1
                    metrics['qa_no_score'] += 1
                    metrics[f'{d}_qa_correct_score'] += 1
                    metrics[f'{d}_qa_no_score'] += 1
            if response == 'No':
                metrics['qa_ans_no_num'] += 1
                metrics[f'{d}_qa_ans_no_num'] += 1
                if truth == 'no':
                    metrics['qa_ans_no_score'] += 1
                    metrics[f'{d}_qa_ans_no_score'] += 1
    out = {
        "chair": round(metrics['chair_score'] / metrics['chair_num'] * 100, 1),
        "cover": round(metrics['safe_cover_score'] / metrics['safe_cover_num'] * 100, 1),
        "cog": round(metrics['hallu_cover_score'] / metrics['hallu_cover_num'] * 100, 1),
        "hal": round(100 - metrics['non_hallu_score'] / metrics['non_hallu_num'] * 100, 1),
    }
    for name, prefixes in (("", [""]), ("existence", ["ha_"]), ("attribute", ["as_", "an_", "aa_"]),
                           ("relation", ["asso_"])):
        def total(key):
            return sum(metrics[f"{p}{key}"] for p in prefixes)

        accuracy = round(total('qa_correct_score') / total('qa_correct_num') * 100, 1)
        precision = round(total('qa_ans_no_score') / total('qa_ans_no_num') * 100, 1)
        recall = round(total('qa_no_score') / total('qa_no_num') * 100, 1)
        eps = 0.001 if name == "existence" else 0.0001
        f1 = round(2 * (precision / 100) * (recall / 100) / ((precision / 100) + (recall / 100) + eps) * 100, 1)
        prefix = f"{name}_" if name else ""
        out.update({f"{prefix}accuracy": accuracy, f"{prefix}precision": precision,
                    f"{prefix}recall": recall, f"{prefix}f1": f1})
    out["counters"] = metrics
    return out
