"""Portuguese and English stop words, accent-folded and lower-cased.

Both lists are removed from every text whatever its language: compliance questions mix the two
("o controller deve notificar o breach?"), and no word here carries meaning in either language.
"""

ENGLISH = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing don down during each every few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just may me might more most must my myself no nor not now of off on
    once only or other our ours ourselves out over own s same shall she should so some such t
    than that the their theirs them themselves then there these they this those through to too
    under until up us very was we were what when where which while who whom why will with would
    you your yours yourself yourselves
    """.split()  # noqa: SIM905 - a word list reads better as text
)

PORTUGUESE = frozenset(
    """
    a ao aos aquela aquelas aquele aqueles aquilo as ate cada com como da das de dela delas dele
    deles depois deve devem do dos e ela elas ele eles em entre era eram essa essas esse esses
    esta estao estas estava este estes eu foi fomos for foram fosse fossem ha isso isto ja la
    las lhe lhes lo los mais mas me mesmo meu meus minha minhas muito na nao nas nem no nos
    nossa nossas nosso nossos num numa o onde os ou para pela pelas pelo pelos pode podem pois
    por quais qual qualquer quando que quem sao se seja sejam sem ser sera serao seu seus so
    sobre sua suas tambem te tem ter tinha tu tua tuas um uma voce voces vos
    """.split()  # noqa: SIM905
)

ALL = ENGLISH | PORTUGUESE
