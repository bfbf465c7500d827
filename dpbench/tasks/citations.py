"""BibTeX entries cited by several sources (one copy each)."""

MORMONT2018_CVPRW = r"""@inproceedings{mormont2018comparison,
  title = {Comparison of deep transfer learning strategies for digital pathology},
  author = {Mormont, Romain and Geurts, Pierre and Mar{\'e}e, Rapha{\"e}l},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition Workshops},
  pages = {2262--2271},
  year = {2018},
  doi = {10.1109/CVPRW.2018.00303}
}"""

JANOWCZYK2016_JPI = r"""@article{janowczyk2016deep,
  title = {Deep learning for digital pathology image analysis: A comprehensive tutorial with selected
           use cases},
  author = {Janowczyk, Andrew and Madabhushi, Anant},
  journal = {Journal of Pathology Informatics},
  volume = {7},
  number = {1},
  pages = {29},
  year = {2016},
  doi = {10.4103/2153-3539.186902}
}"""
MORMONT2020_JBHI = r"""@article{mormont2020multitask,
  title = {Multi-task pre-training of deep neural networks for digital pathology},
  author = {Mormont, Romain and Geurts, Pierre and Mar{\'e}e, Rapha{\"e}l},
  journal = {IEEE Journal of Biomedical and Health Informatics},
  volume = {25},
  number = {2},
  pages = {412--421},
  year = {2021},
  doi = {10.1109/JBHI.2020.2992878}
}"""
