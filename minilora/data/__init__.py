"""Data for minilora: a character tokenizer, synthetic skills, a names corpus, and a task registry.

    from minilora.data import get_task, list_tasks, task_info
    task = get_task("pretrain")                 # copy / reverse / shift / add, mixed
    x, y = task.sample_batch(rng, 64)           # host int64 (B, T) of training inputs; y = -1 on prompt and padding
    task.evaluate(model)                        # on the test split: {"accuracy", "by_length", "n", "by_skill"}
    task.evaluate(model, split="validation")    # the split to choose settings on (SPLITS)
    task.tokenizer.eos_id                       # the token that ends a sample: generation stops there
    task_info("pretrain").role                  # "pretraining" or "fine-tuning"; .description, .example

Every task has three disjoint splits: training batches, "validation" and "test".

Modules: ``tokenizer`` (CharTokenizer), ``batch`` (padding and shifted targets), ``skills`` (the
skill functions and tags), ``skill_tasks`` (training/evaluation on skills), ``names`` (the census
names corpus), ``evaluation`` (splits, eval mode, greedy decoding), ``registry`` (tasks by name).
"""

from minilora.data.batch import IGNORE_INDEX, lm_batch
from minilora.data.evaluation import SPLITS, check_split, greedy_complete
from minilora.data.names import NAMES_TOKENIZER, NamesTask, load_names, split_names
from minilora.data.registry import TASK_ROLES, Task, TaskInfo, get_task, list_tasks, register_task, task_info
from minilora.data.skill_tasks import MixtureTask, SkillTask
from minilora.data.skills import FINETUNE_SKILLS, PRETRAIN_SKILLS, SKILL_TOKENIZER, SKILLS, Skill, is_heldout
from minilora.data.tokenizer import CharTokenizer

__all__ = [
    "CharTokenizer", "IGNORE_INDEX", "lm_batch", "SPLITS", "check_split", "greedy_complete",
    "SKILL_TOKENIZER", "SKILLS", "Skill", "PRETRAIN_SKILLS", "FINETUNE_SKILLS", "is_heldout",
    "SkillTask", "MixtureTask", "NAMES_TOKENIZER", "NamesTask", "load_names", "split_names",
    "Task", "TASK_ROLES", "TaskInfo", "get_task", "list_tasks", "register_task", "task_info",
]
