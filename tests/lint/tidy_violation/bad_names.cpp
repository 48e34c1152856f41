// A deliberate breach of the naming rule in .clang-tidy, for the lint self-test: a check that
// finds nothing here is not checking.
class BadlyNamedClass {
  public:
    int value() const { return m_value; }

  private:
    int badMember = 0;
    int m_value = 0;
};

int UseIt() {
    return BadlyNamedClass{}.value();
}
