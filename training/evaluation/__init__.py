"""Is the new model better? Blind A/B rounds ranked by people, with the judge model beside them."""
